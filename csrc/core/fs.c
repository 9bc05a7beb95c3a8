/*
 * scorch core: directories made with mkdir(2), one component at a time,
 * instead of os.execute("mkdir -p ...") (no shell, no quoting, and errors
 * that name the component that failed).
 */
#include "fs.h"

#include "tensor.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

int sc_is_dir(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir(2) of one path; EEXIST is fine when it is a directory. */
static int make_one(const char *path, const char *whole) {
  if (mkdir(path, 0777) == 0) return 0;
  int err = errno;
  if (err == EEXIST) {
    if (sc_is_dir(path)) return 0;
    sc_set_error("mkdir: cannot create directory %s: %s exists and is not a directory",
                 whole, path);
    return -1;
  }
  sc_set_error("mkdir: cannot create directory %s: %s: %s", whole, path, strerror(err));
  return -1;
}

int sc_mkdir(const char *path, int parents) {
  if (!path || !*path) {
    sc_set_error("mkdir: empty path");
    return -1;
  }
  if (!parents) return make_one(path, path);
  char *p = malloc(strlen(path) + 1);
  if (!p) {
    sc_set_error("mkdir: out of memory");
    return -1;
  }
  strcpy(p, path);
  int rc = 0;
  /* each prefix ending before a '/' (skipping the root and repeated
     slashes), then the whole path */
  for (char *s = p + 1; *s && !rc; s++) {
    if (*s != '/' || s[-1] == '/') continue;
    *s = 0;
    rc = make_one(p, path);
    *s = '/';
  }
  if (!rc) rc = make_one(p, path);
  free(p);
  return rc;
}

char *sc_list_dir(const char *path, size_t *count) {
  *count = 0;
  DIR *d = path && *path ? opendir(path) : NULL;
  if (!d) {
    sc_set_error("list_dir: cannot read directory %s: %s", path ? path : "(null)",
                 path && *path ? strerror(errno) : "empty path");
    return NULL;
  }
  size_t len = 0, cap = 256;
  char *buf = malloc(cap);
  struct dirent *e;
  while (buf && (e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
    size_t n = strlen(name) + 1;
    if (len + n > cap) {
      while (len + n > cap) cap *= 2;
      char *grown = realloc(buf, cap);
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
    }
    memcpy(buf + len, name, n);
    len += n;
    (*count)++;
  }
  closedir(d);
  if (!buf) {
    *count = 0;
    sc_set_error("list_dir: out of memory reading %s", path);
  }
  return buf;
}
