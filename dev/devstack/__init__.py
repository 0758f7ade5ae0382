"""Start and stop the real services logtap's tests and demo talk to, on free local ports.

Each service is a child process whose PID we own: :class:`Service` checks that *our* process is alive
(not only that a port answers) and stops it by PID. Nothing here is imported by the product code.
"""

from devstack.process import Service, free_port, stop_all

__all__ = ["Service", "free_port", "stop_all"]
