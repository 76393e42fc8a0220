package io.keywarden.daemon.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.core.encoder.EncoderBase;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;

/**
 * One JSON object per log line for log shippers ({@code KEYWARDEN_LOG_FORMAT=json}):
 * {@code ts} (RFC 3339, UTC, milliseconds), {@code level}, {@code logger}, {@code thread},
 * {@code message}, and {@code error} (the exception's class and message) when there is one.
 */
public final class JsonLineEncoder extends EncoderBase<ILoggingEvent> {
    private static final JsonFactory JSON = new JsonFactory();

    @Override
    public byte[] headerBytes() {
        return new byte[0];
    }

    @Override
    public byte[] encode(ILoggingEvent e) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            g.writeStringField("ts", DateTimeFormatter.ISO_INSTANT.format(Instant.ofEpochMilli(e.getTimeStamp())));
            g.writeStringField("level", e.getLevel().toString());
            g.writeStringField("logger", e.getLoggerName());
            g.writeStringField("thread", e.getThreadName());
            g.writeStringField("message", e.getFormattedMessage());
            IThrowableProxy t = e.getThrowableProxy();
            if (t != null) {
                g.writeStringField("error", t.getClassName() + (t.getMessage() == null ? "" : ": " + t.getMessage()));
            }
            g.writeEndObject();
        } catch (IOException x) {
            throw new UncheckedIOException(x);
        }
        out.write('\n');
        return out.toByteArray();
    }

    @Override
    public byte[] footerBytes() {
        return new byte[0];
    }
}
