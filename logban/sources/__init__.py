"""Log sources: each yields whole lines with their origin and time."""
