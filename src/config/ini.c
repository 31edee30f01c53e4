/* ini.c: the INI source: files with %include expanded, one record per meaningful line, fed
 * to inih. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

/* ---- the INI source: files with %include expanded, one record per meaningful line ---- */



void src_free(struct ini_src *src)
{
	for (int i = 0; i < src->nlines; i++)
		free(src->lines[i].text);
	for (int i = 0; i < src->nfiles; i++)
		free(src->files[i]);
	free(src->lines);
	free(src->files);
}

/* %include path: relative paths are relative to the including file's directory. */
static shoal_rc src_include(struct ini_src *src, const char *from, int lineno, const char *arg,
			    int depth, char *err, size_t errlen)
{
	if (!*arg || depth >= MAX_INCLUDE_DEPTH) {
		snprintf(err, errlen, "%s:%d: %%include: %s", from, lineno,
			 *arg ? "nested more than 10 deep (an include loop?)"
			      : "missing file name");
		return SHOAL_ERROR;
	}
	const char *slash = strrchr(from, '/');
	int dirlen = (*arg != '/' && slash) ? (int)(slash - from) + 1 : 0;
	size_t n = (size_t)dirlen + strlen(arg) + 1;
	char *path = xmalloc(n);
	snprintf(path, n, "%.*s%s", dirlen, from, arg);
	FILE *f = fopen(path, "r");
	shoal_rc rc = SHOAL_ERROR;
	if (!f)
		snprintf(err, errlen, "%s:%d: %%include: cannot open \"%s\": %s", from, lineno,
			 path, strerror(errno));
	else
		rc = src_read(src, f, path, depth + 1, err, errlen);
	free(path);
	return rc;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* "[name]" with an inline comment allowed after it; anything else blames this line, not the
 * keys that inih would otherwise file under the previous section. */
static shoal_rc check_section_line(const char *s, const char *file, int lineno, char *err,
				   size_t errlen)
{
	const char *close = strchr(s, ']');
	const char *rest = close ? close + 1 : NULL;
	while (rest && isspace((unsigned char)*rest))
		rest++;
	if (close && close > s + 1 && (!*rest || *rest == ';' || *rest == '#'))
		return SHOAL_OK;
	snprintf(err, errlen, "%s:%d: malformed section header \"%s\" (expected [name])", file,
		 lineno, s);
	return SHOAL_ERROR;
}

static shoal_rc src_add_line(struct ini_src *src, const char *file, int lineno, char *raw,
			     int depth, char *err, size_t errlen)
{
	char *s = trim(raw);
	if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s = trim(s + 3);
	if (!*s || *s == ';' || *s == '#')
		return SHOAL_OK;
	if (strncmp(s, "%include", 8) == 0 && (!s[8] || isspace((unsigned char)s[8])))
		return src_include(src, file, lineno, trim(s + 8), depth, err, errlen);
	if (*s == '%') {
		snprintf(err, errlen, "%s:%d: unknown directive \"%s\"", file, lineno, s);
		return SHOAL_ERROR;
	}
	if (*s == '[' && check_section_line(s, file, lineno, err, errlen) != SHOAL_OK)
		return SHOAL_ERROR;
	src->lines = xrealloc(src->lines, sizeof(*src->lines) * (size_t)(src->nlines + 1));
	src->lines[src->nlines++] = (struct src_line){xstrdup(s), file, lineno};
	return SHOAL_OK;
}

/* Read f (closed here) into src. */
shoal_rc src_read(struct ini_src *src, FILE *f, const char *path, int depth, char *err,
		  size_t errlen)
{
	src->files = xrealloc(src->files, sizeof(*src->files) * (size_t)(src->nfiles + 1));
	const char *file = src->files[src->nfiles++] = xstrdup(path);
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	shoal_rc rc = SHOAL_OK;
	while (rc == SHOAL_OK && getline(&line, &cap, f) >= 0)
		rc = src_add_line(src, file, ++lineno, line, depth, err, errlen);
	if (rc == SHOAL_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", file, strerror(errno));
		rc = SHOAL_ERROR;
	}
	free(line);
	fclose(f);
	return rc;
}

/* inih's reader: one stored line per call, so inih's line count indexes src->lines. inih copies
 * lines into a fixed buffer (200 bytes in distribution builds) and silently truncates longer
 * ones, so a key = value line that does not fit is passed as "key = <mark>" and the handler
 * takes the value from the stored line instead. */
char *src_reader(char *str, int num, void *stream)
{
	struct ini_src *src = stream;
	if (src->stop || src->cur == src->nlines || num < 8)
		return NULL;
	const char *t = src->lines[src->cur++].text;
	size_t room = (size_t)num - 2;
	const char *eq = strpbrk(t, "=:"); /* inih splits at the first '=' or ':' */
	if (strlen(t) <= room || *t == '[')
		snprintf(str, (size_t)num, "%.*s\n", (int)room, t);
	else if (eq && (size_t)(eq - t) + 4 <= room)
		snprintf(str, (size_t)num, "%.*s= %s\n", (int)(eq - t), t, LONG_VALUE_MARK);
	else /* a key that does not fit: no '=', so inih reports a syntax error on this line */
		snprintf(str, (size_t)num, "%s\n", LONG_VALUE_MARK);
	return str;
}

/* The value of the stored line behind a LONG_VALUE_MARK, by inih's rules: trimmed, and an
 * inline comment (" ;...") cut. Edits and points into the stored line. */
const char *long_value(struct src_line *l)
{
	char *v = strpbrk(l->text, "=:") + 1;
	for (char *c = v; *c; c++) {
		if (*c == ';' && c > v && isspace((unsigned char)c[-1])) {
			*c = '\0';
			break;
		}
	}
	return trim(v);
}
