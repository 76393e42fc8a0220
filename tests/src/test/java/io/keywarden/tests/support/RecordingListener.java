package io.keywarden.tests.support;

import io.keywarden.attestation.Attestation;
import io.keywarden.delivery.AccessListener;
import io.keywarden.delivery.IssuedKey;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Keeps every access decision, as the ledger would see them. */
public final class RecordingListener implements AccessListener {
    public record Event(boolean granted, int pid, int uid, String workload, String key, String file, String reason) {
    }

    public final List<Event> events = new CopyOnWriteArrayList<>();

    @Override
    public void granted(Attestation.Identified who, String key, String file, IssuedKey issued) {
        events.add(new Event(true, who.process().pid(), who.process().uid(), who.workload().name(), key, file, null));
    }

    @Override
    public void denied(Attestation who, String key, String file, io.keywarden.delivery.Decision.Refusal code,
                       String reason) {
        int pid = who.process() == null ? -1 : who.process().pid();
        int uid = who.process() == null ? -1 : who.process().uid();
        String wl = who instanceof Attestation.Identified i ? i.workload().name() : null;
        events.add(new Event(false, pid, uid, wl, key, file, reason));
    }

    public List<Event> denials() {
        return events.stream().filter(e -> !e.granted()).toList();
    }
}
