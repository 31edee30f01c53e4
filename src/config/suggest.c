/* suggest.c: "did you mean" for unknown setting names, by edit distance. */
#include "config_env.h"

#include <ctype.h>
#include <string.h>

size_t config_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64) /* names are short; a long word is no typo of one */
		return la > lb ? la : lb;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			bool same =
			    tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
			size_t best = diag + (same ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* A typo is a few edits away: up to a third of the word, at least 2. */
static size_t max_typo(const char *word)
{
	size_t n = strlen(word) / 3;
	return n < 2 ? 2 : n;
}

static void consider(const char *word, const char *name, const char **best, size_t *dist)
{
	size_t d = config_edit_distance(word, name);
	if (d < *dist) {
		*dist = d;
		*best = name;
	}
}

const char *config_suggest(const char *word, const char *const *names, size_t count)
{
	const char *best = NULL;
	size_t dist = max_typo(word) + 1;
	for (size_t i = 0; i < count; i++)
		consider(word, names[i], &best, &dist);
	return best;
}

const char *config_suggest_setting(const char *word, const char *const *extra, size_t nextra)
{
	const char *best = NULL, *def;
	size_t dist = max_typo(word) + 1;
	bool reload;
	for (int i = 0; i < config_setting_count(); i++)
		consider(word, config_setting_info(i, &def, &reload), &best, &dist);
	for (size_t i = 0; i < nextra; i++)
		consider(word, extra[i], &best, &dist);
	return best;
}
