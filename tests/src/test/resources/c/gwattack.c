/*
 * Attacks on the gateway's caller identity, for GatewayAttackIT.
 *
 *   gwattack fork-pass unix PATH|tcp PORT  EXE [ARG...]
 *       connects, forks; the parent execs EXE (the permitted program) keeping the socket open, the
 *       child sends a request on it and prints the answer's status line.
 *   gwattack send-fd FD
 *       sends a request on an inherited, already connected descriptor and prints the status line.
 *
 * The request: POST /openai/v1/chat/completions with a small JSON body. Output: "STATUS <line>" or
 * "STATUS none" when the gateway closed without answering.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static const char *BODY = "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static int connect_to(const char *kind, const char *where) {
    int fd;
    if (strcmp(kind, "unix") == 0) {
        struct sockaddr_un a = {0};
        a.sun_family = AF_UNIX;
        strncpy(a.sun_path, where, sizeof(a.sun_path) - 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) { perror("connect"); exit(2); }
    } else {
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons((unsigned short) atoi(where));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) { perror("connect"); exit(2); }
    }
    return fd;
}

static void request(int fd) {
    char req[1024];
    int n = snprintf(req, sizeof(req), "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                     "Content-Type: application/json\r\nAuthorization: Bearer placeholder\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(BODY), BODY);
    if (write(fd, req, n) != n) { printf("STATUS none (write failed)\n"); return; }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    if (got <= 0) { printf("STATUS none\n"); return; }
    buf[got] = 0;
    char *eol = strstr(buf, "\r\n");
    if (eol) *eol = 0;
    printf("STATUS %s\n", buf);
    if (eol) {
        char *body = strstr(eol + 1, "\r\n\r\n");
        if (body) printf("BODY %s\n", body + 4);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 5 && strcmp(argv[1], "fork-pass") == 0) {
        int fd = connect_to(argv[2], argv[3]);
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 2; }
        if (child == 0) {
            usleep(300 * 1000);            /* the parent is the permitted program by now */
            request(fd);
            return 0;
        }
        execv(argv[4], &argv[4]);          /* keeps fd: no close-on-exec */
        perror("execv");
        return 2;
    }
    if (argc == 3 && strcmp(argv[1], "send-fd") == 0) {
        request(atoi(argv[2]));
        return 0;
    }
    fprintf(stderr, "usage: gwattack fork-pass unix PATH|tcp PORT EXE [ARG...] | send-fd FD\n");
    return 2;
}
