package io.keywarden.policy;

import java.util.List;
import java.util.Optional;

/**
 * Extra conditions keywarden itself checks on every open, whatever identity provider is used.
 * Each non-empty list must contain the process's value; empty lists do not restrict.
 */
public record Readers(List<Integer> uids, List<String> exes, List<String> sha256s) {
    public static final Readers ANY = new Readers(List.of(), List.of(), List.of());

    public Readers {
        uids = List.copyOf(uids);
        exes = List.copyOf(exes);
        sha256s = List.copyOf(sha256s);
    }

    /** Empty when the process may read; otherwise why not (for the ledger). */
    public Optional<String> refusal(ProcessFacts p) {
        if (!uids.isEmpty() && !uids.contains(p.uid())) {
            return Optional.of("uid " + Integer.toUnsignedString(p.uid()) + " is not a permitted reader");
        }
        if (!exes.isEmpty() && exes.stream().noneMatch(p::exeIs)) {
            return Optional.of("executable " + p.exe().orElse("(unreadable)") + " is not a permitted reader");
        }
        if (!sha256s.isEmpty() && !p.exeSha256().map(sha256s::contains).orElse(false)) {
            return Optional.of("executable digest is not a permitted reader");
        }
        return Optional.empty();
    }

    public boolean isUnrestricted() {
        return uids.isEmpty() && exes.isEmpty() && sha256s.isEmpty();
    }
}
