package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// LeaseName is the coordination.k8s.io Lease, in the environment's
// namespace, that makes reconciles of one namespace take turns.
const LeaseName = "codex-bootstrap-reconcile"

// LockedError says another run holds the namespace's lease.
type LockedError struct {
	Namespace string
	Holder    string
	// Age is how long the holder has held it; Expires when the lease
	// counts as stale if not renewed.
	Age     time.Duration
	Expires time.Duration
}

func (e *LockedError) Error() string {
	return e.Problem() + ": wait for it to finish, or wait for the lease longer"
}

// Problem says what is wrong without saying what to do about it, for a
// caller that words the remedy itself.
func (e *LockedError) Problem() string {
	return fmt.Sprintf("namespace %s is being reconciled by %s (for %s; the lease is taken over if not renewed within %s)",
		e.Namespace, e.Holder, e.Age.Round(time.Second), e.Expires.Round(time.Second))
}

// ErrLeaseLost cancels a run whose lease was taken by another.
var ErrLeaseLost = errors.New("lost the reconcile lease")

type lease struct {
	e      *reconcileRun
	client coordinationclient.LeaseInterface
	uid    string
	// rv is the resourceVersion of this run's last write of the lease:
	// release deletes it without reading it first when nothing else
	// wrote it since.
	rv string
}

func (e *reconcileRun) acquireLease(ctx context.Context) (*lease, error) {
	l := &lease{e: e, client: e.c.Kube.CoordinationV1().Leases(e.p.Namespace)}
	secs := int32(e.opts.LeaseDuration / time.Second)
	if secs < 1 {
		secs = 1
	}
	var deadline time.Time
	if e.opts.LockWait > 0 {
		deadline = e.now().Add(e.opts.LockWait)
	}
	// A finished run deletes its lease: usually there is none, so it is
	// created first and read only when it is there.
	for create := true; ; {
		now := metav1.NewMicroTime(e.now())
		if create {
			created, err := l.client.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: e.p.Namespace, Labels: map[string]string{LabelManagedBy: ManagedBy}},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: &e.opts.Holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now,
				},
			}, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) {
				create = false
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("acquire lease %s/%s: %w", e.p.Namespace, LeaseName, err)
			}
			l.uid, l.rv = string(created.UID), created.ResourceVersion
			return l, nil
		}
		cur, err := l.client.Get(ctx, LeaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			create = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease %s/%s: %w", e.p.Namespace, LeaseName, err)
		}
		holder := deref(cur.Spec.HolderIdentity)
		expiry := leaseExpiry(cur)
		if holder == "" || holder == e.opts.Holder || !e.now().Before(expiry) {
			if holder != "" && holder != e.opts.Holder {
				e.log.Warn("taking over a stale reconcile lease", "namespace", e.p.Namespace, "holder", holder,
					"last renewed", e.now().Sub(renewed(cur)).Round(time.Second))
			}
			cur.Spec.HolderIdentity = &e.opts.Holder
			cur.Spec.LeaseDurationSeconds = &secs
			cur.Spec.AcquireTime, cur.Spec.RenewTime = &now, &now
			n := deref(cur.Spec.LeaseTransitions) + 1
			cur.Spec.LeaseTransitions = &n
			updated, err := l.client.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				continue // someone else moved first; look again
			}
			if err != nil {
				return nil, fmt.Errorf("acquire lease %s/%s: %w", e.p.Namespace, LeaseName, err)
			}
			l.uid, l.rv = string(updated.UID), updated.ResourceVersion
			return l, nil
		}
		locked := &LockedError{Namespace: e.p.Namespace, Holder: holder, Age: e.now().Sub(acquired(cur)), Expires: expiry.Sub(e.now())}
		if deadline.IsZero() || !e.now().Before(deadline) {
			return nil, locked
		}
		e.log.Warn("waiting for another reconcile of the namespace", "namespace", e.p.Namespace, "holder", holder, "age", locked.Age.Round(time.Second))
		// Wake when the lease changes or goes stale, whichever comes first.
		wake := expiry
		if deadline.Before(wake) {
			wake = deadline
		}
		if err := l.waitChange(ctx, cur.ResourceVersion, wake); err != nil {
			return nil, err
		}
	}
}

// waitChange returns when the lease changes or at wake.
func (l *lease) waitChange(ctx context.Context, rv string, wake time.Time) error {
	wctx, cancel := context.WithDeadline(ctx, wake)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", LeaseName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return l.client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return l.client.Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(wctx, lw, &coordinationv1.Lease{},
		func(store cache.Store) (bool, error) {
			items := store.List()
			return len(items) == 0 || items[0].(*coordinationv1.Lease).ResourceVersion != rv, nil
		},
		func(ev watch.Event) (bool, error) {
			return ev.Type == watch.Deleted || ev.Type == watch.Modified, nil
		})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil // changed, or time to look again
}

// keepAlive renews the lease every third of its duration until stopped. If
// the lease is taken by another, the run is cancelled with ErrLeaseLost.
func (l *lease) keepAlive(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	ctx, stopCtx := context.WithCancel(ctx)
	done := make(chan struct{})
	every := l.e.opts.LeaseDuration / 3
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		last := l.e.now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := l.renew(ctx)
			switch {
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case err != nil && ctx.Err() == nil:
				l.e.log.Warn("renewing the reconcile lease", "namespace", l.e.p.Namespace, "err", err)
				if l.e.now().Sub(last) > l.e.opts.LeaseDuration {
					cancel(fmt.Errorf("%w: not renewed for %s: %w", ErrLeaseLost, l.e.opts.LeaseDuration, err))
					return
				}
			case err == nil:
				last = l.e.now()
			}
		}
	}()
	return func() { stopCtx(); <-done }
}

func (l *lease) renew(ctx context.Context) error {
	cur, err := l.client.Get(ctx, LeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: the lease was deleted", ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	if h := deref(cur.Spec.HolderIdentity); h != l.e.opts.Holder {
		return fmt.Errorf("%w: now held by %s", ErrLeaseLost, h)
	}
	now := metav1.NewMicroTime(l.e.now())
	cur.Spec.RenewTime = &now
	updated, err := l.client.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
	if err == nil {
		l.rv = updated.ResourceVersion
	}
	return err
}

// release deletes the lease if this run still holds it: at once when no
// one wrote it since this run did, else after reading who holds it.
func (l *lease) release(ctx context.Context) error {
	if l.rv != "" {
		uid := types.UID(l.uid)
		err := l.client.Delete(ctx, LeaseName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &l.rv}})
		if !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
	cur, err := l.client.Get(ctx, LeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if deref(cur.Spec.HolderIdentity) != l.e.opts.Holder {
		return nil
	}
	uid, rv := cur.UID, cur.ResourceVersion
	err = l.client.Delete(ctx, LeaseName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func renewed(l *coordinationv1.Lease) time.Time {
	switch {
	case l.Spec.RenewTime != nil:
		return l.Spec.RenewTime.Time
	case l.Spec.AcquireTime != nil:
		return l.Spec.AcquireTime.Time
	}
	return l.CreationTimestamp.Time
}

func acquired(l *coordinationv1.Lease) time.Time {
	if l.Spec.AcquireTime != nil {
		return l.Spec.AcquireTime.Time
	}
	return l.CreationTimestamp.Time
}

func leaseExpiry(l *coordinationv1.Lease) time.Time {
	d := time.Duration(deref(l.Spec.LeaseDurationSeconds)) * time.Second
	return renewed(l).Add(d)
}
