/* list.h: intrusive circular doubly linked lists; state = list membership (DESIGN §1.2). A head
 * keeps its count and an item knows its head, so list_count is O(1) (as PgBouncer's statlist);
 * every change goes through list_append and list_del. */
#ifndef SHOAL_LIST_H
#define SHOAL_LIST_H

#include <assert.h>
#include <stddef.h>

struct list {
	struct list *next, *prev;
	struct list *head; /* an item: the list that holds it; NULL: none (and for a head) */
	size_t n;          /* a head: how many items it holds */
};

/* A static empty list: static struct list x = LIST_INIT(x); */
#define LIST_INIT(l) {&(l), &(l), NULL, 0}

static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
	l->head = NULL;
	l->n = 0;
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
	item->head = head;
	head->n++;
}

/* Remove item from whatever list holds it; item becomes an empty list. */
static inline void list_del(struct list *item)
{
	if (item->head) {
		assert(item->head->n > 0);
		item->head->n--;
	}
	item->prev->next = item->next;
	item->next->prev = item->prev;
	list_init(item);
}

static inline struct list *list_first(struct list *head)
{
	return list_empty(head) ? NULL : head->next;
}

/* How many items head holds. Test builds (-Dcassert=true) check the count against a walk. */
static inline size_t list_count(const struct list *head)
{
#ifndef NDEBUG
	size_t n = 0;
	for (const struct list *i = head->next; i != head; i = i->next)
		n++;
	assert(n == head->n);
#endif
	return head->n;
}

#define list_for_each_safe(pos, tmp, head)                                                         \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
