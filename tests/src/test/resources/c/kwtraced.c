/*
 * kwtraced: runs a command as a traced child (PTRACE_TRACEME, as a debugger does), lets it run to
 * the end, and exits with its status. Used to show that keywarden refuses a caller that has a
 * tracer attached when it opens a key.
 *
 *   kwtraced PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: kwtraced PROGRAM [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            perror("ptrace(TRACEME)");
            _exit(3);
        }
        execv(argv[1], argv + 1);
        perror("execv");
        _exit(4);
    }
    int st;
    for (;;) {
        if (waitpid(pid, &st, 0) < 0) {
            perror("waitpid");
            return 5;
        }
        if (WIFEXITED(st)) return WEXITSTATUS(st);
        if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
        int sig = WIFSTOPPED(st) && WSTOPSIG(st) != SIGTRAP ? WSTOPSIG(st) : 0;
        ptrace(PTRACE_CONT, pid, NULL, (void *) (long) sig);
    }
}
