package io.keywarden.policy.yaml;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads one small YAML document into a tree of located nodes, strictly: no anchors or aliases
 * (so no alias bombs), no duplicate keys, no tabs in indentation, one document, bounded size,
 * depth and node count. Templating is not a feature: the text is read as it is.
 */
public final class YamlReader {
    public static final int MAX_BYTES = 1 << 20;
    static final int MAX_DEPTH = 32;
    static final int MAX_NODES = 100_000;

    private static final YAMLFactory FACTORY = YAMLFactory.builder().build();

    private final String file;
    private final Problems problems = new Problems();
    private int nodes;

    private YamlReader(String file) {
        this.file = file;
    }

    /** Reads {@code path}; errors name it as {@code displayName}. */
    public static YamlNode read(Path path, String displayName) throws ProblemsException {
        byte[] bytes;
        try {
            // Only a regular file, and never more than the limit: /dev/zero, a FIFO or a directory
            // is refused before anything is read.
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            if (a.isDirectory()) {
                throw fatal(displayName, "is a directory, not a file");
            }
            if (!a.isRegularFile()) {
                throw fatal(displayName, "is not a regular file (a device, FIFO or socket)");
            }
            if (a.size() > MAX_BYTES) {
                throw fatal(displayName, "file is " + a.size() + " bytes; the limit is " + MAX_BYTES);
            }
            bytes = readBounded(path, displayName);
        } catch (NoSuchFileException e) {
            throw fatal(displayName, "no such file");
        } catch (AccessDeniedException e) {
            throw fatal(displayName, "cannot read file: permission denied");
        } catch (IOException e) {
            throw fatal(displayName, "cannot read file: " + (e.getMessage() == null ? "I/O error" : e.getMessage()));
        }
        return parse(bytes, displayName);
    }

    private static byte[] readBounded(Path path, String displayName) throws IOException, ProblemsException {
        try (InputStream in = Files.newInputStream(path)) {
            byte[] b = in.readNBytes(MAX_BYTES + 1);
            if (b.length > MAX_BYTES) {
                throw fatal(displayName, "file is over " + MAX_BYTES + " bytes; the limit is " + MAX_BYTES);
            }
            return b;
        }
    }

    public static YamlNode parse(byte[] bytes, String displayName) throws ProblemsException {
        if (bytes.length > MAX_BYTES) {
            throw fatal(displayName, "file is " + bytes.length + " bytes; the limit is " + MAX_BYTES);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw fatal(displayName, "file is not valid UTF-8");
        }
        return new YamlReader(displayName).parseText(text);
    }

    private static ProblemsException fatal(String file, String message) {
        return new ProblemsException(List.of(new Problem(new Location(file, 1, 1), message)));
    }

    private YamlNode parseText(String text) throws ProblemsException {
        checkTabs(text);
        problems.throwIfAny();
        try (YAMLParser parser = (YAMLParser) FACTORY.createParser(text)) {
            JsonToken first = parser.nextToken();
            if (first == null) {
                throw fatal(file, "file is empty (no YAML document)");
            }
            YamlNode root = node(parser, 0);
            if (parser.nextToken() != null) {
                problems.add(loc(parser.currentTokenLocation()), "only one YAML document is allowed");
            }
            problems.throwIfAny();
            return root;
        } catch (JsonProcessingException e) {
            throw new ProblemsException(List.of(new Problem(loc(e.getLocation()), syntaxMessage(e))));
        } catch (IOException e) {
            throw fatal(file, "cannot parse YAML: " + e.getClass().getSimpleName());
        } catch (TooBig e) {
            throw new ProblemsException(List.of(new Problem(e.where, e.getMessage())));
        }
    }

    private void checkTabs(String text) {
        int line = 1;
        int col = 1;
        boolean leading = true;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\n') {
                line++;
                col = 1;
                leading = true;
                continue;
            }
            if (c == '\t' && leading) {
                problems.add(new Location(file, line, col), "tab character in indentation (YAML indents with spaces)");
            } else if (c != ' ' && c != '-') {
                leading = false;
            }
            col++;
        }
    }

    private YamlNode node(YAMLParser p, int depth) throws IOException, TooBig {
        Location where = loc(p.currentTokenLocation());
        if (++nodes > MAX_NODES) {
            throw new TooBig(where, "document has more than " + MAX_NODES + " nodes");
        }
        if (depth > MAX_DEPTH) {
            throw new TooBig(where, "document is nested deeper than " + MAX_DEPTH + " levels");
        }
        if (p.getObjectId() != null) {
            problems.add(where, "YAML anchors (&" + p.getObjectId() + ") are not allowed");
        }
        JsonToken t = p.currentToken();
        switch (t) {
            case START_OBJECT: {
                List<YamlMap.Entry> entries = new ArrayList<>();
                Map<String, Location> seen = new HashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String key = p.currentName();
                    Location keyLoc = loc(p.currentTokenLocation());
                    p.nextToken();
                    YamlNode value = node(p, depth + 1);
                    Location before = seen.putIfAbsent(key, keyLoc);
                    if (before != null) {
                        problems.add(keyLoc, "duplicate key '" + key + "' (first at line " + before.line() + ")");
                    } else {
                        entries.add(new YamlMap.Entry(key, keyLoc, value));
                    }
                }
                return new YamlMap(where, entries);
            }
            case START_ARRAY: {
                List<YamlNode> items = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    items.add(node(p, depth + 1));
                }
                return new YamlList(where, items);
            }
            case VALUE_STRING:
                if (p.isCurrentAlias()) {
                    problems.add(where, "YAML aliases (*" + p.getText() + ") are not allowed");
                }
                return new YamlScalar(where, p.getText(), YamlScalar.Kind.STRING);
            case VALUE_NUMBER_INT:
                return new YamlScalar(where, p.getText(), YamlScalar.Kind.INTEGER);
            case VALUE_NUMBER_FLOAT:
                return new YamlScalar(where, p.getText(), YamlScalar.Kind.FLOAT);
            case VALUE_TRUE:
            case VALUE_FALSE:
                return new YamlScalar(where, p.getText(), YamlScalar.Kind.BOOLEAN);
            case VALUE_NULL:
                return new YamlScalar(where, "", YamlScalar.Kind.NULL);
            default:
                return new YamlScalar(where, p.getText(), YamlScalar.Kind.STRING);
        }
    }

    private Location loc(JsonLocation l) {
        if (l == null) {
            return new Location(file, 1, 1);
        }
        return new Location(file, Math.max(1, l.getLineNr()), Math.max(1, l.getColumnNr()));
    }

    private static String syntaxMessage(JsonProcessingException e) {
        String m = e.getOriginalMessage();
        if (m == null) {
            return "YAML syntax error";
        }
        // SnakeYAML repeats the offending text with a caret on extra lines; keep the first line.
        int nl = m.indexOf('\n');
        String first = (nl < 0 ? m : m.substring(0, nl)).trim();
        return "YAML syntax error: " + first;
    }

    private static final class TooBig extends Exception {
        private static final long serialVersionUID = 1L;
        final transient Location where;

        TooBig(Location where, String message) {
            super(message, null, false, false);
            this.where = where;
        }
    }
}
