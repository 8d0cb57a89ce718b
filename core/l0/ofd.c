/*
 * ofd.c -- byte-range locks on the region file through open file
 * descriptions (F_OFD_*).  They carry the liveness of process slots and the
 * "being initialised" mark: the kernel drops them when the last descriptor of
 * the description closes, whatever kills the process.
 */
#include "l0_ofd.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

static int ofd(int fd, int cmd, short type, uint64_t start, uint64_t len,
               struct flock *out) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)start;
    fl.l_len = (off_t)len;
    int rc;
    do {
        rc = fcntl(fd, cmd, &fl);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return errno;
    if (out) memcpy(out, &fl, sizeof fl);
    return 0;
}

int l0_ofd_trylock(int fd, uint64_t start, uint64_t len) {
    int rc = ofd(fd, F_OFD_SETLK, F_WRLCK, start, len, NULL);
    return rc == EACCES ? EAGAIN : rc;
}

int l0_ofd_unlock(int fd, uint64_t start, uint64_t len) {
    return ofd(fd, F_OFD_SETLK, F_UNLCK, start, len, NULL);
}

int l0_ofd_held_elsewhere(int fd, uint64_t start, uint64_t len) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    int rc = ofd(fd, F_OFD_GETLK, F_WRLCK, start, len, &fl);
    if (rc != 0) return -rc;
    return fl.l_type != F_UNLCK;
}

int l0_open_same(int fd, const char *path) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int nfd = open(proc, O_RDWR | O_CLOEXEC);
    if (nfd >= 0) return nfd;
    /* No /proc: the path, if it still names the same file. */
    struct stat a, b;
    nfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0) return -errno;
    if (fstat(nfd, &a) != 0 || fstat(fd, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
        close(nfd);
        return CACHEE_L0_E_NO_REGION;
    }
    return nfd;
}
