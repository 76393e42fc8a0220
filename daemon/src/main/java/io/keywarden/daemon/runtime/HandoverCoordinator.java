package io.keywarden.daemon.runtime;

import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.LedgerEvent;
import io.keywarden.daemon.handover.HandoverServer;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.Unrevoked;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerRegistry;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This daemon's side of a takeover ({@code keywarden run --takeover}): it stops every component
 * as at shutdown except that the FUSE session is paused (not unmounted) and the leases are
 * exported (not revoked) — each stopping component asks {@link #handing()} — then hands the
 * mount's descriptor, KeyFS's state, the leases and the issuers' state to the successor. When
 * the successor fails after this daemon stopped, {@link #resumeWith()} is what to start again from.
 */
final class HandoverCoordinator implements HandoverServer.Daemon {
    private static final Logger LOG = LoggerFactory.getLogger(HandoverCoordinator.class);

    /** What the stopping components of a handover leave for the successor. */
    static final class Handing {
        volatile FuseSession.Handoff fuse;
        volatile KeyFs.State keyFs;
        volatile List<LeaseManager.HandedSlot> leases = List.of();
        volatile List<Unrevoked.Entry> unrevoked = List.of();
    }

    private final RunState run;
    private final Components components;
    private final Path mountPoint;
    private volatile AuditTrail audit;
    private volatile Handing handing;
    private volatile Inheritance resumeWith;
    private volatile long handedOverTo = -1;
    private volatile FuseSession fuse;
    private volatile LeaseManager leases;
    private volatile IssuerRegistry issuers;

    HandoverCoordinator(RunState run, Components components, Path mountPoint) {
        this.run = run;
        this.components = components;
        this.mountPoint = mountPoint;
    }

    /** What a handover stops and collects from, once the daemon serves; {@code fuse} null: tmpfs, nothing to hand over. */
    void serving(AuditTrail audit, FuseSession fuse, LeaseManager leases, IssuerRegistry issuers) {
        this.audit = audit;
        this.fuse = fuse;
        this.leases = leases;
        this.issuers = issuers;
    }

    /** Set while handing over: the stopping components leave their state here instead of unmounting and revoking. */
    Handing handing() {
        return handing;
    }

    /** A successor that could not start: it leaves the inherited mount and leases as they are for the predecessor. */
    void leaveAsInherited() {
        handing = new Handing();
    }

    @Override
    public Inheritance handOver(long toPid) throws HandoverServer.Refused {
        FuseSession session = fuse;
        if (run.stopping()) {
            throw new HandoverServer.Refused("this daemon is stopping");
        }
        if (session == null) {
            throw new HandoverServer.Refused("this daemon serves tmpfs files, not a FUSE mount: stop it, then start"
                    + " the new one");
        }
        if (session.servesOverIoUring()) {
            throw new HandoverServer.Refused(FuseSession.IO_URING_NO_HANDOVER);
        }
        Handing h = new Handing();
        if (!run.beginStop("handing over to pid " + toPid)) {
            throw new HandoverServer.Refused("this daemon is stopping");
        }
        handing = h;
        LOG.info("handing over {} to pid {}", mountPoint, toPid);
        audit.record(LedgerEvent.DAEMON_HANDOVER, Map.of("to_pid", toPid, "leases", leases.view().size()));
        components.stopAll();
        if (h.fuse == null) {
            // The delivery component failed to pause, and everything else has stopped: nothing is left to
            // hand over or to serve with. Stop for good (unmount) and let the supervisor start us again.
            session.close();
            run.reason("handover failed: the FUSE session could not be paused");
            run.exitCode(3);
            run.stopped();
            throw new HandoverServer.Refused("the FUSE session could not be paused; this daemon stopped");
        }
        // After every component stopped: no issuance or revocation changes an issuer's state any more.
        Map<String, byte[]> issuerState = new HashMap<>();
        for (Issuer i : issuers.all()) {
            byte[] st = i.handoverState();
            if (st.length > 0) {
                issuerState.put(i.name(), st);
            }
        }
        return new Inheritance(ProcessHandle.current().pid(), BuildInfo.load().version(),
                mountPoint.toAbsolutePath().normalize(), h.fuse, h.keyFs, h.leases, issuerState, h.unrevoked);
    }

    @Override
    public void handedOver(long toPid) {
        LOG.info("handed over to pid {}: stopped without unmounting or revoking", toPid);
        handedOverTo = toPid;
        run.exitCode(0);
        run.stopped();
    }

    @Override
    public void resume(Inheritance kept, String why) {
        LOG.warn("handover failed ({}): serving again", why);
        resumeWith = kept;
        run.stopped();
    }

    @Override
    public void refused(io.keywarden.linux.PeerCred peer, String why) {
        LOG.warn("handover refused to pid {} (uid {}): {}", peer.pid(), peer.uid(), why);
        AuditTrail a = audit;
        if (!run.stopping() && a != null) {
            a.record(LedgerEvent.HANDOVER_REFUSED, Map.of("pid", peer.pid(), "uid", peer.uid(), "reason", why));
        }
    }

    /** A takeover: each issuer continues with the state its predecessor instance handed over (Vault: its tokens). */
    static void adoptIssuerState(Inheritance inherited, IssuerRegistry issuers) throws java.io.IOException {
        if (inherited == null) {
            return;
        }
        for (Map.Entry<String, byte[]> e : inherited.issuerState().entrySet()) {
            Optional<Issuer> i = issuers.named(e.getKey());
            try {
                if (i.isPresent()) {
                    i.get().adoptHandoverState(e.getValue());
                } else {
                    LOG.warn("issuer {} of the daemon that handed over is not configured here: its leases are left"
                            + " to expire", e.getKey());
                }
            } catch (io.keywarden.issuer.IssuerException x) {
                throw new java.io.IOException(x.getMessage(), x);
            } finally {
                java.util.Arrays.fill(e.getValue(), (byte) 0);
            }
        }
    }

    /** The successor's pid once this instance handed over. */
    OptionalLong handedOverTo() {
        return handedOverTo < 0 ? OptionalLong.empty() : OptionalLong.of(handedOverTo);
    }

    /** After a handover that failed once this instance had stopped: start again from this. */
    Optional<Inheritance> resumeWith() {
        return Optional.ofNullable(resumeWith);
    }
}
