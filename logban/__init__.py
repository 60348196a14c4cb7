"""logban: ban SMTP AUTH attackers into a kernel ipset."""

__version__ = "0.1.0"
