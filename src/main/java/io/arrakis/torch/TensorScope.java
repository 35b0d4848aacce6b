package io.arrakis.torch;

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
 * A scope belongs to the thread that opened it; tensors made on other threads are not tracked by it.
 */
public final class TensorScope implements AutoCloseable {
    private static final ThreadLocal<TensorScope> CURRENT = new ThreadLocal<>();

    private final TensorScope parent;
    private final Thread owner;
    private final List<Tensor> tensors = new ArrayList<>();
    private boolean closed;
    /** When the list reaches this size, tensors already closed are dropped from it, so long scopes stay small. */
    private int compactAt = 1024;

    private TensorScope(TensorScope parent) {
        this.parent = parent;
        this.owner = Thread.currentThread();
    }

    /** Opens a scope nested in this thread's current one. */
    public static TensorScope open() {
        TensorScope scope = new TensorScope(CURRENT.get());
        CURRENT.set(scope);
        return scope;
    }

    /** Called for each new tensor: the innermost open scope of this thread takes it. */
    static void track(Tensor t) {
        TensorScope scope = CURRENT.get();
        if (scope != null) {
            scope.add(t);
            t.scope = scope;
        }
    }

    private void add(Tensor t) {
        if (tensors.size() >= compactAt) {
            tensors.removeIf(Tensor::isClosed);
            compactAt = Math.max(1024, 2 * tensors.size());
        }
        tensors.add(t);
    }

    /**
     * Keeps {@code t} alive past this scope: it moves to the enclosing scope, or to nobody (the caller then closes it,
     * or the garbage collector's backstop does).
     */
    public <T extends Tensor> T keep(T t) {
        checkOwner();
        if (t.scope == this) {
            t.scope = parent;
            if (parent != null) {
                parent.add(t);
            }
        }
        return t;
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
        if (CURRENT.get() != this) {
            throw new IllegalStateException("TensorScope closed out of order: close inner scopes first");
        }
        closed = true;
        CURRENT.set(parent);
        for (int i = tensors.size() - 1; i >= 0; i--) {
            Tensor t = tensors.get(i);
            if (t.scope == this) {
                t.close();
            }
        }
        tensors.clear();
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("a TensorScope belongs to the thread that opened it (" + owner.getName() + ")");
        }
    }
}
