/* list.h: intrusive circular doubly linked lists; state = list membership (DESIGN §1.2). */
#ifndef SHOAL_LIST_H
#define SHOAL_LIST_H

#include <stddef.h>

struct list {
	struct list *next, *prev;
};

static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static inline int list_empty(const struct list *l)
{
	return l->next == l;
}

/* Append item at the tail of head (FIFO order). */
static inline void list_append(struct list *head, struct list *item)
{
	item->prev = head->prev;
	item->next = head;
	head->prev->next = item;
	head->prev = item;
}

/* Remove item from whatever list holds it; item becomes an empty list. */
static inline void list_del(struct list *item)
{
	item->prev->next = item->next;
	item->next->prev = item->prev;
	list_init(item);
}

static inline struct list *list_first(struct list *head)
{
	return list_empty(head) ? NULL : head->next;
}

static inline size_t list_count(const struct list *head)
{
	size_t n = 0;
	for (const struct list *i = head->next; i != head; i = i->next)
		n++;
	return n;
}

#define list_for_each_safe(pos, tmp, head)                                                         \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
