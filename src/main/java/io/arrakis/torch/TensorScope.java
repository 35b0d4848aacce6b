package io.arrakis.torch;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Frees, when closed, every tensor created on this thread while it was the innermost open scope, except those handed
 * on with {@link #keep}. Scopes nest; close them in reverse order of opening, best with try-with-resources:
 *
 * <pre>{@code
 * Tensor result;
 * try (TensorScope scope = TensorScope.open()) {
 *     Tensor h = x.matmul(w).add(b);      // freed when the scope closes
 *     result = scope.keep(h.relu());      // survives, handed to the enclosing scope if there is one
 * }
 * }</pre>
 *
 * A scope belongs to the thread that opened it; tensors made on other threads are not tracked by it. Tensors a scope
 * owns cost less to make than free-standing ones: the scope, not a per-tensor registration, is their backstop, so a
 * scope that becomes unreachable together with all its tensors still frees them.
 */
public final class TensorScope implements AutoCloseable {
    private static final ThreadLocal<TensorScope> CURRENT = new ThreadLocal<>();
    private static final Cleaner BACKSTOP = Cleaner.create();

    /** What the scope frees; it never references the scope, so the backstop can run once the scope is unreachable. */
    static final class Owned implements Runnable {
        private final List<NativeHandle> handles = new ArrayList<>();
        /** When the list reaches this size, handles already released are dropped from it, so long scopes stay small. */
        private int compactAt = 1024;
        /** Set by {@link TensorScope#close}: the owner frees the scope, on a thread that lives on. */
        private volatile boolean closedByOwner;

        void add(NativeHandle h) {
            if (handles.size() >= compactAt) {
                handles.removeIf(NativeHandle::isReleased);
                compactAt = Math.max(1024, 2 * handles.size());
            }
            handles.add(h);
        }

        /**
         * Frees what this scope still owns, newest first. Run once: by {@link TensorScope#close}, or by the backstop
         * once a scope nobody closed is unreachable: its thread has ended, or its pool cleared the thread's
         * thread-locals. The backstop then also asks for the free memory of the malloc arenas to be handed back to
         * the system ({@link NativeHeap#trimSoon}), rather than left to the next thread that takes the arena; whether
         * or not it freed a tensor itself, as the tensors, unreachable too, may have been freed first by their own
         * backstop.
         */
        @Override
        public void run() {
            boolean ownedAny = !handles.isEmpty();
            for (int i = handles.size() - 1; i >= 0; i--) {
                NativeHandle h = handles.get(i);
                if (h.owner == this) {
                    h.release();
                }
            }
            handles.clear();
            if (ownedAny && !closedByOwner) {
                NativeHeap.trimSoon();
            }
        }
    }

    private final TensorScope parent;
    private final Thread owner;
    private final Owned owned = new Owned();
    private final Cleaner.Cleanable cleanable;
    private boolean closed;
    /** How many {@link #callIn} bodies run in this scope: it cannot close under them. */
    private int running;

    private TensorScope(TensorScope parent) {
        this.parent = parent;
        this.owner = Thread.currentThread();
        this.cleanable = BACKSTOP.register(this, owned);
    }

    /** Opens a scope nested in this thread's current one. */
    public static TensorScope open() {
        TensorScope scope = new TensorScope(CURRENT.get());
        CURRENT.set(scope);
        return scope;
    }

    /**
     * Makes tensors that outlive every open scope, such as a cache's: {@code make} runs in a scope of its own, and what
     * it returns is kept by nobody (its owner closes it, or the garbage collector's backstop does); the rest is freed.
     */
    public static <C extends Collection<? extends Tensor>> C unscoped(java.util.function.Supplier<C> make) {
        TensorScope outer = CURRENT.get();
        CURRENT.set(null);
        try (TensorScope scope = open()) {
            return scope.keepAll(make.get());
        } finally {
            CURRENT.set(outer);
        }
    }

    /** This thread's innermost open scope, or null. */
    static TensorScope current() {
        return CURRENT.get();
    }

    /**
     * Closes the scopes opened inside this one that are still open, innermost first, freeing their tensors: for code
     * that calls code it does not own (a hook) and must find its scope innermost again afterwards.
     *
     * @return how many were open
     * @throws IllegalStateException if this scope is closed, or not open on the calling thread
     */
    public int closeInnerScopes() {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("closeInnerScopes: this TensorScope is closed");
        }
        TensorScope inner = CURRENT.get();
        while (inner != null && inner != this) {
            inner = inner.parent;
        }
        if (inner == null) {
            throw new IllegalStateException("closeInnerScopes: this TensorScope is not among the thread's open scopes");
        }
        int open = 0;
        while (CURRENT.get() != this) {
            CURRENT.get().close(); // the innermost: close makes its parent current
            open++;
        }
        return open;
    }

    /** Takes ownership of a new tensor. */
    void adopt(Tensor t, NativeHandle handle) {
        handle.owner = owned;
        owned.add(handle);
        t.scope = this;
    }

    /**
     * Keeps {@code t} alive past this scope: it moves to the enclosing scope, or to nobody (the caller then closes it,
     * or the garbage collector's backstop does). A tensor of an enclosing scope, or of none, already outlives this one
     * and stays where it is.
     *
     * @throws IllegalStateException if this scope is closed, or {@code t} belongs to a scope that this one does not
     *     nest in (a scope opened inside this one, or on another thread)
     */
    public <T extends Tensor> T keep(T t) {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("keep: this TensorScope is closed, and its tensors with it; keep them before"
                    + " it closes");
        }
        if (t.isClosed()) {
            throw new IllegalStateException("keep: tensor " + t.name() + " is closed already");
        }
        TensorScope from = t.scope;
        if (from != this && from != null && !encloses(from)) {
            throw new IllegalStateException("keep: tensor " + t.name() + " belongs to another TensorScope (opened inside"
                    + " this one, around TensorScope.unscoped, or on another thread), which will free it; keep it"
                    + " through that scope");
        }
        if (from == this) {
            NativeHandle h = t.nativeHandle();
            if (parent != null) {
                parent.adopt(t, h);
            } else {
                t.scope = null;
                h.owner = null;
                if (!h.isReleased()) {
                    h.register();
                }
            }
        }
        return t;
    }

    /**
     * Makes this scope the owner of {@code t}, a tensor of a scope opened inside this one: it then lives as long as
     * this scope rather than the inner one. A tensor of this scope, of an enclosing one or of none stays where it is.
     *
     * @throws IllegalStateException if this scope is closed or not this thread's, or {@code t} is closed or belongs to
     *     another thread's scope
     */
    public <T extends Tensor> T claim(T t) {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("claim: this TensorScope is closed");
        }
        if (t.isClosed()) {
            throw new IllegalStateException("claim: tensor " + t.name() + " is closed already");
        }
        TensorScope from = t.scope;
        if (from != null && from != this && from.encloses(this)) {
            adopt(t, t.nativeHandle());
        } else if (from != null && from != this && !encloses(from)) {
            throw new IllegalStateException("claim: tensor " + t.name() + " belongs to a TensorScope neither inside"
                    + " this one nor around it (a sibling, or another thread's)");
        }
        return t;
    }

    /**
     * Runs {@code body} with this scope, open on this thread around the innermost one, as the innermost: what it makes
     * outside scopes of its own belongs to this scope, and scopes it opens nest in this one. The scopes open inside
     * this one before are the innermost again afterwards; any scope {@code body} left open is closed first.
     */
    public <R> R callIn(java.util.function.Supplier<R> body) {
        checkOwner();
        if (closed) {
            throw new IllegalStateException("callIn: this TensorScope is closed");
        }
        TensorScope inner = CURRENT.get();
        if (inner != this && (inner == null || !inner.encloses(this))) {
            throw new IllegalStateException("callIn: this TensorScope is not among the thread's open scopes");
        }
        CURRENT.set(this);
        running++;
        try {
            return body.get();
        } finally {
            running--;
            closeInnerScopes();
            CURRENT.set(inner);
        }
    }

    /** Whether {@code scope} is one this scope is nested in, which outlives it. */
    private boolean encloses(TensorScope scope) {
        for (TensorScope p = parent; p != null; p = p.parent) {
            if (p == scope) {
                return true;
            }
        }
        return false;
    }

    /** {@link #keep} for each tensor of a collection. */
    public <C extends Collection<? extends Tensor>> C keepAll(C ts) {
        ts.forEach(this::keep);
        return ts;
    }

    /** Frees the tensors this scope still owns, newest first. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        checkOwner();
        if (running > 0) {
            throw new IllegalStateException("a TensorScope cannot close while code runs in it (a hook of a forward"
                    + " pass, which runs in the pass's scope, or a TensorScope.callIn body): close it after that returns");
        }
        if (CURRENT.get() != this) {
            throw new IllegalStateException("TensorScope closed out of order: close inner scopes first");
        }
        closed = true;
        CURRENT.set(parent);
        owned.closedByOwner = true;
        cleanable.clean();
        Reference.reachabilityFence(this); // else the backstop could run the release instead, on its own thread
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("a TensorScope belongs to the thread that opened it (" + owner.getName() + ")");
        }
    }
}
