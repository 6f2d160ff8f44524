/* fuse_floor_hl: the FUSE floor as most FUSE file systems are written, for
 * the read benchmarks: libfuse's high-level API (paths, fuse_main) serving
 * one static file, as libfuse's hello.c example does.
 *
 *   fuse_floor_hl [-s] MOUNTPOINT    (-f: stays in the foreground)
 *
 * One file, /value, holding "1234567\n" with its real size: no direct_io,
 * libfuse's defaults (attribute and entry timeouts of 1 s, the page cache
 * dropped at each open), so a read takes one READ request and the kernel
 * finds the end of the file by the size, without asking.  The low-level
 * floor (fuse_floor.c) is the same file through the API memstatfs uses.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>

static const char content[] = "1234567\n";

static int hl_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/value") != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)strlen(content);
	return 0;
}

static int hl_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "value", NULL, 0, 0);
	return 0;
}

static int hl_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/value") != 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	return 0;
}

static int hl_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t len = strlen(content);

	(void)path;
	(void)fi;
	if (off < 0 || (size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	memcpy(buf, content + off, size);
	return (int)size;
}

static const struct fuse_operations ops = {
	.getattr = hl_getattr,
	.readdir = hl_readdir,
	.open = hl_open,
	.read = hl_read,
};

int main(int argc, char **argv)
{
	return fuse_main(argc, argv, &ops, NULL);
}
