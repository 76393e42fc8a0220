import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A minimal HTTP/1.1 keep-alive load generator, run as the workload's uid (java LoadGen.java …):
 * each of C connections sends POSTs back to back (or at a pace of P a second) for S seconds (after W seconds of warm-up) and
 * times each from the first byte written to the last byte read, and to the first body byte (TTFB).
 * Prints one line: requests, rps, p50/p99 latency and TTFB in microseconds, errors.
 * Raw sockets, so that its own overhead is small and the same for every target.
 */
public class LoadGen {
    public static void main(String[] a) throws Exception {
        String host = a[0];   // or unix:PATH
        int port = Integer.parseInt(a[1]);
        String path = a[2];
        int conns = Integer.parseInt(a[3]);
        double seconds = Double.parseDouble(a[4]);
        double warmup = Double.parseDouble(a[5]);
        String body = a[6];
        String auth = a.length > 7 ? a[7] : "Bearer placeholder";
        // Requests a second per connection, evenly spaced (an agent's pace); 0: back to back.
        double pace = a.length > 8 ? Double.parseDouble(a[8]) : 0;
        long gapNanos = pace > 0 ? (long) (1e9 / pace) : 0;
        String hostHeader = host.startsWith("unix:") ? "localhost" : host + ":" + port;
        byte[] req = ("POST " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nContent-Type: application/json\r\n"
                + "Authorization: " + auth + "\r\nContent-Length: " + body.getBytes(StandardCharsets.UTF_8).length
                + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8);
        AtomicBoolean measuring = new AtomicBoolean(false);
        AtomicBoolean stop = new AtomicBoolean(false);
        AtomicLong errors = new AtomicLong();
        List<long[]> all = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < conns; c++) {
            long[] lat = new long[2_000_000];
            long[] ttfb = new long[2_000_000];
            int[] n = {0};
            all.add(lat);
            all.add(ttfb);
            Thread t = new Thread(() -> {
                java.io.Closeable s = null;
                long next = System.nanoTime();
                InputStream in = null;
                OutputStream out = null;
                while (!stop.get()) {
                    try {
                        if (s == null) {
                            if (host.startsWith("unix:")) {
                                java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(
                                        java.net.StandardProtocolFamily.UNIX);
                                ch.connect(java.net.UnixDomainSocketAddress.of(host.substring(5)));
                                s = ch;
                                in = new java.io.BufferedInputStream(java.nio.channels.Channels.newInputStream(ch), 1 << 16);
                                out = java.nio.channels.Channels.newOutputStream(ch);
                            } else {
                                Socket so = new Socket();
                                so.setTcpNoDelay(true);
                                so.connect(new InetSocketAddress(host, port));
                                s = so;
                                in = new java.io.BufferedInputStream(so.getInputStream(), 1 << 16);
                                out = so.getOutputStream();
                            }
                        }
                        if (gapNanos > 0) {
                            next += gapNanos;
                            for (long wait = next - System.nanoTime(); wait > 0 && !stop.get();
                                 wait = next - System.nanoTime()) {
                                java.util.concurrent.locks.LockSupport.parkNanos(wait);
                            }
                        }
                        long t0 = System.nanoTime();
                        out.write(req);
                        out.flush();
                        long[] first = {0};
                        int status = readResponse(in, t0, first);
                        long t1 = System.nanoTime();
                        if (status != 200) {
                            errors.incrementAndGet();
                        }
                        if (measuring.get() && n[0] < lat.length) {
                            lat[n[0]] = (t1 - t0) / 1000;
                            ttfb[n[0]] = (first[0] - t0) / 1000;
                            n[0]++;
                        }
                    } catch (IOException e) {
                        errors.incrementAndGet();
                        try {
                            if (s != null) {
                                s.close();
                            }
                        } catch (IOException ignored) {
                        }
                        s = null;
                    }
                }
                lat[lat.length - 1] = n[0];
            });
            threads.add(t);
            t.start();
        }
        Thread.sleep((long) (warmup * 1000));
        errors.set(0);
        measuring.set(true);
        long m0 = System.nanoTime();
        Thread.sleep((long) (seconds * 1000));
        measuring.set(false);
        long m1 = System.nanoTime();
        stop.set(true);
        for (Thread t : threads) {
            t.join(10_000);
        }
        List<Long> l = new ArrayList<>();
        List<Long> f = new ArrayList<>();
        for (int i = 0; i < all.size(); i += 2) {
            long[] lat = all.get(i);
            long[] tt = all.get(i + 1);
            int n = (int) lat[lat.length - 1];
            for (int j = 0; j < n; j++) {
                l.add(lat[j]);
                f.add(tt[j]);
            }
        }
        long[] ls = l.stream().mapToLong(Long::longValue).sorted().toArray();
        long[] fs = f.stream().mapToLong(Long::longValue).sorted().toArray();
        double secs = (m1 - m0) / 1e9;
        System.out.printf("requests=%d rps=%.0f p50_us=%d p99_us=%d ttfb_p50_us=%d ttfb_p99_us=%d errors=%d%n", ls.length,
                ls.length / secs, pct(ls, 50), pct(ls, 99), pct(fs, 50), pct(fs, 99), errors.get());
    }

    static long pct(long[] s, int p) {
        return s.length == 0 ? -1 : s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)];
    }

    /** Reads one response (Content-Length or chunked); returns the status; first[0] = time of the first body byte. */
    static int readResponse(InputStream in, long t0, long[] first) throws IOException {
        String statusLine = line(in);
        if (statusLine == null) {
            throw new IOException("closed");
        }
        int status = Integer.parseInt(statusLine.split(" ")[1]);
        long length = -1;
        boolean chunked = false;
        boolean close = false;
        for (String h; !(h = line(in)).isEmpty(); ) {
            String k = h.substring(0, h.indexOf(':')).trim().toLowerCase();
            String v = h.substring(h.indexOf(':') + 1).trim();
            if (k.equals("content-length")) {
                length = Long.parseLong(v);
            } else if (k.equals("transfer-encoding") && v.toLowerCase().contains("chunked")) {
                chunked = true;
            } else if (k.equals("connection") && v.equalsIgnoreCase("close")) {
                close = true;
            }
        }
        if (chunked) {
            boolean firstChunk = true;
            while (true) {
                String size = line(in);
                if (firstChunk) {
                    first[0] = System.nanoTime();
                    firstChunk = false;
                }
                int n = Integer.parseInt(size.split(";")[0].trim(), 16);
                if (n == 0) {
                    while (!line(in).isEmpty()) {
                        // trailers
                    }
                    break;
                }
                in.readNBytes(n);
                line(in);
            }
        } else if (length >= 0) {
            int b = in.read();
            first[0] = System.nanoTime();
            if (b < 0 && length > 0) {
                throw new IOException("short body");
            }
            in.readNBytes((int) Math.max(0, length - 1));
        } else {
            first[0] = System.nanoTime();
            in.readAllBytes();
            throw new IOException("no length: connection closed");
        }
        if (close) {
            throw new IOException("server closed the connection");
        }
        return status;
    }

    static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c; (c = in.read()) >= 0; ) {
            if (c == '\n') {
                byte[] x = b.toByteArray();
                int n = x.length > 0 && x[x.length - 1] == '\r' ? x.length - 1 : x.length;
                return new String(x, 0, n, StandardCharsets.ISO_8859_1);
            }
            b.write(c);
        }
        return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
    }
}
