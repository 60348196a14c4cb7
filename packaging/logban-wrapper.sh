#!/bin/sh
# /usr/bin/logban: run logban with the Python it was packaged for, and with logban and its
# bundled dependencies (PyYAML, watchdog, pyroute2) from the package's private directory
# /usr/lib/logban/site, so nothing of the system's Python packages is replaced or needed
# (EL9's EPEL has no watchdog and an old pyroute2; see /usr/share/doc/logban/install.md).
#
# The private directory is found relative to this script (../lib/logban/site), so an RPM
# unpacked somewhere else (rpm2cpio | cpio, as the package tests do) runs from there too.
#
# LOGBAN_PYTHON=/path/to/python3.11+ overrides the interpreter (for tests, or a Python
# installed elsewhere). The default is decided when the RPM is built:
#   EL9: /usr/bin/python3.11 (the system python3 is 3.9, too old); elsewhere /usr/bin/python3.
py=${LOGBAN_PYTHON:-@PYTHON@}
self=$(readlink -f -- "$0") || self=$0
site=$(dirname -- "$self")/../lib/logban/site
if [ ! -d "$site/logban" ]; then
    echo "logban: cannot find the logban package in $site; reinstall the logban RPM" >&2
    exit 2
fi
if ! command -v "$py" >/dev/null 2>&1; then
    echo "logban: the Python interpreter $py is missing; install it (EL9: dnf install python3.11)" \
         "or set LOGBAN_PYTHON to a Python 3.11 or newer" >&2
    exit 2
fi
# -I (isolated): no PYTHONPATH/PYTHON* variables, no user site-packages and no current
# directory on sys.path: a root daemon must not import a stray yaml.py from wherever it was
# started. The system site-packages stay visible for python3-systemd (the journal source).
exec "$py" -I -c '
import sys
if sys.version_info < (3, 11):
    sys.exit("logban: needs Python 3.11 or newer, %s is %d.%d; install python3.11 or set "
             "LOGBAN_PYTHON" % (sys.executable, sys.version_info[0], sys.version_info[1]))
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "logban"
from logban.cli import main
sys.exit(main())
' "$site" "$@"
