package apply

import (
	"context"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// listFrom is how many objects of one resource in one namespace a diff
// reads with one list instead of one get each: a namespace usually holds
// the plan's objects and few others of the kinds it plans.
const listFrom = 3

// liveCache reads the live objects a diff compares with: one list per
// resource and namespace the plan has at least listFrom objects of, one
// get for the rest.
type liveCache struct {
	dyn   dynamic.Interface
	mu    sync.Mutex
	wants map[listKey]int
	lists map[listKey]*liveList
}

type listKey struct {
	gvr       schema.GroupVersionResource
	namespace string
}

type liveList struct {
	once  sync.Once
	items map[string]*unstructured.Unstructured
	err   error
}

func newLiveCache(dyn dynamic.Interface) *liveCache {
	return &liveCache{dyn: dyn, wants: map[listKey]int{}, lists: map[listKey]*liveList{}}
}

// want counts an object the diff will read; call it before any get.
func (c *liveCache) want(gvr schema.GroupVersionResource, namespace string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wants[listKey{gvr, namespace}]++
}

// get returns the live object, nil when there is none.
func (c *liveCache) get(ctx context.Context, ri dynamic.ResourceInterface, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	key := listKey{gvr, namespace}
	c.mu.Lock()
	l := c.lists[key]
	if l == nil && c.wants[key] >= listFrom {
		l = &liveList{}
		c.lists[key] = l
	}
	c.mu.Unlock()
	if l != nil {
		l.once.Do(func() { l.items, l.err = c.list(ctx, key) })
		if l.err == nil {
			return l.items[name], nil
		}
		// A list refused (RBAC allowing get only): one get each.
	}
	live, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return live, err
}

func (c *liveCache) list(ctx context.Context, key listKey) (map[string]*unstructured.Unstructured, error) {
	ri := c.dyn.Resource(key.gvr).Namespace(key.namespace)
	out := map[string]*unstructured.Unstructured{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			out[l.Items[i].GetName()] = &l.Items[i]
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}
