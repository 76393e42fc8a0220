package io.keywarden.tests.support;

/**
 * The pid-reuse lottery, won on purpose instead of by tens of thousands of forks: through
 * {@code ns_last_pid} (root), a free pid is given to a new {@code sleep 60} of the given uid (its
 * stdin, stdout and stderr on /dev/null, so the caller's pipes close when the placing script exits).
 * Kill it when done.
 */
public final class PidReuse {
    static final String PLACE = """
            import os, sys
            target, uid = int(sys.argv[1]), int(sys.argv[2])
            for attempt in range(500):
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(target - 1))
                pid = os.fork()
                if pid == 0:
                    if os.getpid() != target:
                        os._exit(3)
                    os.setgroups([]); os.setgid(uid); os.setuid(uid)
                    null = os.open("/dev/null", os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    os.execv("/bin/sleep", ["sleep", "60"])
                if pid == target:
                    print(pid, attempt + 1)
                    sys.exit(0)
                os.waitpid(pid, 0)
            print("missed")
            sys.exit(1)
            """;

    private PidReuse() {
    }

    /** Gives {@code pid} (free now) to a new process of {@code uid}; its output is "PID ATTEMPTS" when it worked. */
    public static Proc.Result giveTo(String pid, int uid) {
        return Proc.run("/usr/bin/python3", "-c", PLACE, pid, Integer.toString(uid));
    }
}
