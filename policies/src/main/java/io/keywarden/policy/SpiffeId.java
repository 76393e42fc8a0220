package io.keywarden.policy;

/**
 * A SPIFFE ID, validated as the SPIFFE standard defines it: {@code spiffe://<trust domain>/<path>}
 * with a lower-case trust domain of {@code [a-z0-9._-]}, path segments of {@code [a-zA-Z0-9._-]},
 * no empty, {@code .} or {@code ..} segments, no trailing slash, no query, fragment or port.
 */
public record SpiffeId(String trustDomain, String path) {
    private static final String SCHEME = "spiffe://";
    private static final int MAX_LENGTH = 2048;

    public SpiffeId {
        checkTrustDomain(trustDomain);
        checkPath(path);
    }

    /** @throws IllegalArgumentException with the reason {@code text} is not a SPIFFE ID */
    public static SpiffeId parse(String text) {
        if (text == null || text.isEmpty()) {
            throw new IllegalArgumentException("a SPIFFE ID is required (spiffe://trust.domain/path)");
        }
        if (text.length() > MAX_LENGTH) {
            throw new IllegalArgumentException("SPIFFE ID is longer than " + MAX_LENGTH + " characters");
        }
        if (!text.startsWith(SCHEME)) {
            throw new IllegalArgumentException("'" + text + "' is not a SPIFFE ID: it must start with spiffe://");
        }
        String rest = text.substring(SCHEME.length());
        int slash = rest.indexOf('/');
        String td = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? "" : rest.substring(slash);
        try {
            return new SpiffeId(td, path);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + text + "' is not a SPIFFE ID: " + e.getMessage(), e);
        }
    }

    private static void checkTrustDomain(String td) {
        if (td == null || td.isEmpty()) {
            throw new IllegalArgumentException("the trust domain is empty");
        }
        for (int i = 0; i < td.length(); i++) {
            char c = td.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
            if (!ok) {
                throw new IllegalArgumentException("the trust domain may only hold a-z, 0-9, '.', '-' and '_'"
                        + (Character.isUpperCase(c) ? " (lower case)" : "") + ", found '" + c + "'");
            }
        }
    }

    private static void checkPath(String path) {
        if (path == null || path.isEmpty()) {
            return;
        }
        if (!path.startsWith("/")) {
            throw new IllegalArgumentException("the path must start with '/'");
        }
        if (path.endsWith("/")) {
            throw new IllegalArgumentException("the path must not end with '/'");
        }
        for (String seg : path.substring(1).split("/", -1)) {
            if (seg.isEmpty()) {
                throw new IllegalArgumentException("the path has an empty segment");
            }
            if (seg.equals(".") || seg.equals("..")) {
                throw new IllegalArgumentException("the path has a '" + seg + "' segment");
            }
            for (int i = 0; i < seg.length(); i++) {
                char c = seg.charAt(i);
                boolean ok = Character.isLetterOrDigit(c) && c < 128 || c == '.' || c == '-' || c == '_';
                if (!ok) {
                    throw new IllegalArgumentException("the path may only hold a-z, A-Z, 0-9, '.', '-', '_' and '/', found '"
                            + c + "'");
                }
            }
        }
    }

    @Override
    public String toString() {
        return SCHEME + trustDomain + path;
    }

    // Written out: a record's own equals and hashCode go through method handles, which the daemon's
    // C1-only JIT does not inline (an ID is part of a map key looked up on every open).
    @Override
    public boolean equals(Object o) {
        return o instanceof SpiffeId s && trustDomain.equals(s.trustDomain) && path.equals(s.path);
    }

    @Override
    public int hashCode() {
        return trustDomain.hashCode() * 31 + path.hashCode();
    }
}
