"""Ban actions: the kernel ipset and a dry run, behind one interface."""
