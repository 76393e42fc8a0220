/*
 * kwexec: reads a key file, then renames another binary over its own path and execs that path in
 * the same process (same pid, same thread id, same start time), so the new program opens the key
 * with everything but the executable unchanged. Prints only lengths, never the key.
 *
 *   kwexec KEYFILE REPLACEMENT SELF
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: kwexec KEYFILE REPLACEMENT SELF\n");
        return 2;
    }
    char buf[4096];
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror("first open");
        return 3;
    }
    long total = 0;
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) total += n;
    close(fd);
    printf("first read %ld bytes\n", total);
    fflush(stdout);
    if (rename(argv[2], argv[3]) != 0) {
        perror("rename");
        return 4;
    }
    /* The replacement is a cat: it reads the key again, now as another program. */
    execl(argv[3], argv[3], argv[1], (char *) NULL);
    perror("execl");
    return 5;
}
