package io.keywarden.tests.support;

import io.keywarden.fuse.FuseOperations;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** Counts the FUSE operations the kernel asks of a file system, by name, before handing each on. */
public final class FuseCalls {
    private final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
    private final FuseOperations counted;

    public FuseCalls(FuseOperations target) {
        this.counted = (FuseOperations) java.lang.reflect.Proxy.newProxyInstance(FuseOperations.class.getClassLoader(),
                new Class<?>[] {FuseOperations.class}, (proxy, m, args) -> {
                    calls.computeIfAbsent(m.getName(), n -> new AtomicInteger()).incrementAndGet();
                    try {
                        return m.invoke(target, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** The file system to mount. */
    public FuseOperations operations() {
        return counted;
    }

    /** How many times the kernel asked {@code op} (the method's name: open, read, getattr, …). */
    public int count(String op) {
        AtomicInteger n = calls.get(op);
        return n == null ? 0 : n.get();
    }

    @Override
    public String toString() {
        return calls.toString();
    }
}
