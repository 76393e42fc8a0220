package io.keywarden.daemon.runtime;

import io.keywarden.issuer.IssuerSpec;
import io.keywarden.policy.Durations;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import java.io.PrintWriter;
import java.util.Locale;

/** The lines printed once the daemon serves: where, with what, and the file each workload reads. */
final class ReadyBanner {
    private ReadyBanner() {
    }

    static void print(PrintWriter out, Spec s, FrontEnds.FrontEnd at) {
        out.printf("%s: serving %s at %s (%s identity, %s). Ctrl-C to stop.%n", s.label(),
                at.fuse() ? "KeyFS (FUSE)" : "tmpfs", at.path(), s.identity().provider().name().toLowerCase(Locale.ROOT),
                issuers(s));
        for (Workload w : s.policy().workloads()) {
            String who = s.identity().provider() == IdentitySettings.Provider.SPIRE ? "processes SPIRE attests as"
                    : w.selectors().isEmpty() ? "nobody (no selectors)"
                    : String.join(" and ", w.selectors().stream().map(ReadyBanner::describe).toList());
            for (String k : w.keys()) {
                out.printf("  %s  <- readable by %s (%s)%s%n", at.apiKey(w.name(), k), who, w.spiffeId(),
                        readerLimits(w.readers()));
            }
        }
        s.extensions().gateway().ifPresent(g -> {
            String first = s.policy().keys().keySet().stream().findFirst().orElse("KEY");
            g.listen().ifPresent(hp -> out.printf("  gateway: http://%s/<key>/ (e.g. OPENAI_BASE_URL=http://%s/%s/v1, any"
                    + " placeholder key)%n", hp, hp, first));
            g.socket().ifPresent(p -> out.printf("  gateway socket: %s (http over a Unix socket, path /<key>/...)%n", p));
            g.mtls().ifPresent(m -> out.printf("  gateway mTLS: https://%s/<key>/ (remote callers by X.509-SVID; own SVID from"
                    + " %s)%n", m.listen(), m.workloadApi()));
        });
        s.audit().file().ifPresent(a -> out.printf("  ledger: %s (keywarden audit show %s)%n", a, a));
        out.printf("  admin socket: %s (keywarden status%s)%n", s.adminSocket(),
                s.adminSocket().equals(io.keywarden.daemon.runtime.DefaultPaths.ADMIN_SOCKET) ? ""
                        : " finds it; or --admin-socket " + s.adminSocket());
        out.flush();
    }

    /** "dev issuer, key TTL 5m", "vault issuer", or "issuers bao (vault), dev (dev, key TTL 5m)". */
    static String issuers(Spec s) {
        if (s.issuers().size() == 1) {
            IssuerSpec only = s.issuers().values().iterator().next();
            return only instanceof io.keywarden.issuer.dev.DevType.Spec d ? "dev issuer, key TTL " + Durations.format(d.ttl())
                    : only.type() + " issuer";
        }
        StringBuilder b = new StringBuilder("issuers ");
        for (IssuerSpec i : s.issuers().values()) {
            b.append(b.length() > 8 ? ", " : "").append(i.name()).append(" (").append(i.type())
                    .append(i instanceof io.keywarden.issuer.dev.DevType.Spec d ? ", key TTL " + Durations.format(d.ttl()) : "").append(')');
        }
        return b.toString();
    }

    /** ", only by exe /usr/bin/python3", the extra conditions checked on every open; empty when none. */
    static String readerLimits(io.keywarden.policy.Readers r) {
        if (r.isUnrestricted()) {
            return "";
        }
        java.util.List<String> parts = new java.util.ArrayList<>();
        if (!r.uids().isEmpty()) {
            parts.add("uid " + String.join("|", r.uids().stream().map(Integer::toUnsignedString).toList()));
        }
        if (!r.exes().isEmpty()) {
            parts.add("exe " + String.join("|", r.exes()));
        }
        if (!r.sha256s().isEmpty()) {
            parts.add("exe sha256 " + String.join("|", r.sha256s().stream().map(h -> h.substring(0, 12) + "…").toList()));
        }
        return ", only by " + String.join(" and ", parts);
    }

    static String describe(Selector s) {
        return switch (s.kind()) {
            case UNIX_UID -> "uid " + s.value();
            case UNIX_GID -> "gid " + s.value();
            case UNIX_PATH -> "exe " + s.value();
            case UNIX_SHA256 -> "exe sha256 " + s.value().substring(0, 12) + "…";
            case K8S_POD_UID -> "pod " + s.value();
            case CONTAINER_ID -> "container " + s.value().substring(0, 12);
        };
    }
}
