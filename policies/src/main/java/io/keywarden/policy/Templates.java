package io.keywarden.policy;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The placeholders of a key's parameters: {@code {workload}} is the workload's name,
 * {@code {workload.params.NAME}} one of its {@code params}. Anything else in braces is an error,
 * found when the policy loads, never when a key is issued.
 */
public final class Templates {
    public static final String WORKLOAD = "{workload}";
    private static final String PARAM_PREFIX = "workload.params.";
    /** A parameter name: a letter, then letters, digits or '_' (up to 64). */
    private static final Pattern PARAM_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_]{0,63}");
    private static final Pattern BRACES = Pattern.compile("\\{([^{}]*)}");

    private Templates() {
    }

    public static boolean isParamName(String s) {
        return s != null && PARAM_NAME.matcher(s).matches();
    }

    /** What is wrong with {@code template}'s placeholders (unknown or unbalanced), or empty. */
    public static Optional<String> problem(String template) {
        Matcher m = BRACES.matcher(template);
        StringBuilder rest = new StringBuilder();
        while (m.find()) {
            String inner = m.group(1);
            if (!inner.equals("workload") && !(inner.startsWith(PARAM_PREFIX)
                    && isParamName(inner.substring(PARAM_PREFIX.length())))) {
                return Optional.of("has an unknown placeholder '{" + inner + "}' (use {workload} or"
                        + " {workload.params.NAME})");
            }
            m.appendReplacement(rest, "");
        }
        m.appendTail(rest);
        if (rest.indexOf("{") >= 0 || rest.indexOf("}") >= 0) {
            return Optional.of("has an unbalanced '{' or '}'");
        }
        return Optional.empty();
    }

    /** The workload parameters {@code template} refers to, in order. */
    public static Set<String> paramRefs(String template) {
        Set<String> out = new LinkedHashSet<>();
        Matcher m = BRACES.matcher(template);
        while (m.find()) {
            String inner = m.group(1);
            if (inner.startsWith(PARAM_PREFIX)) {
                out.add(inner.substring(PARAM_PREFIX.length()));
            }
        }
        return out;
    }

    /** {@code template} with every placeholder replaced by the workload's values; braces are then gone. */
    public static String expand(String template, Workload w) {
        if (template.indexOf('{') < 0) {
            return template;
        }
        Matcher m = BRACES.matcher(template);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String inner = m.group(1);
            String value;
            if (inner.equals("workload")) {
                value = w.name();
            } else if (inner.startsWith(PARAM_PREFIX)) {
                String name = inner.substring(PARAM_PREFIX.length());
                value = w.params().get(name);
                if (value == null) {
                    throw new IllegalArgumentException("workload " + w.name() + " has no params." + name);
                }
            } else {
                throw new IllegalArgumentException("unknown placeholder {" + inner + "}");
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** Every template of a key: its params' values and its vault role and path. */
    public static List<String> of(KeySpec k) {
        List<String> out = new ArrayList<>(k.params().values());
        k.vault().ifPresent(v -> {
            out.add(v.role());
            out.add(v.path());
        });
        return out;
    }
}
