"""The exit codes every command of peftsum and launcher shares (the table in docs/architecture.md, "Exit codes").

One meaning per number, whatever the command, so a Job's backoff policy, a shell script and ``launcher run`` can
all read a cell's or a command's ending the same way.
"""

EXIT_OK = 0  # done (or already done)
EXIT_FAILED = 1  # failed; the reason is printed (and, for a cell, in status.json)
EXIT_BAD_INPUT = 2  # never runnable as given (grid, spec, arguments, a store that refuses): a person must fix it
EXIT_RETRY = 3  # interrupted (SIGTERM/SIGINT) or a transient fault: rerunning resumes
