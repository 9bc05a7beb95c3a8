/*
 * scorch core: the few file-system calls the library needs, without a shell.
 *
 * Plain C11 + POSIX, no Lua headers.  Failures return -1 with a message in
 * sc_error().
 */
#ifndef SC_FS_H
#define SC_FS_H

#include <stddef.h>

/* Creates the directory path (mode 0777 less the umask).  With parents,
   each missing component is made in turn, as `mkdir -p` does; without, only
   the last, whose parent must exist.  A directory already there is
   success; anything else there (a file) is an error. */
int sc_mkdir(const char *path, int parents);

/* 1 when path names a directory (symlinks followed), else 0. */
int sc_is_dir(const char *path);

/* The names in directory path ("." and ".." left out, in readdir's order)
   as one malloc'd buffer of NUL-terminated names, *count of them; the
   caller frees it.  NULL with the error set when the directory cannot be
   read. */
char *sc_list_dir(const char *path, size_t *count);

#endif
