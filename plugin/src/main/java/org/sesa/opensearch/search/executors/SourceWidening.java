package org.sesa.opensearch.search.executors;

import org.opensearch.common.regex.Regex;
import org.opensearch.search.fetch.subphase.FetchSourceContext;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What {@code _source} the searches of a SESA request fetch: the user's own setting, widened by the fields the
 * response processors read (concept weights for the explanations, the passage texts for rerank). The user's filter
 * is applied again to the hits returned ({@link SesaSearchPlan#visibleSource}), so the widening never shows.
 */
final class SourceWidening {

    private SourceWidening() {}

    /** Source fields the response processors read: concept weights (explanations) and texts (rerank). */
    static List<String> neededFields(SesaSearchExt ext, SesaFieldNames names, List<String> textFields) {
        Set<String> out = new LinkedHashSet<>();
        if (ext.explain()) {
            out.add(names.concepts());
        }
        if (Boolean.FALSE.equals(ext.rerank()) == false) {
            for (String f : textFields) {
                int caret = f.indexOf('^');
                out.add(caret < 0 ? f : f.substring(0, caret));
            }
        }
        return List.copyOf(out);
    }

    /**
     * {@code user}, or, when the request sets no {@code _source} and its targets hold windows, the full source without
     * the window vectors ({@code <prefix>_chunks.dense}; their spans stay).
     */
    static FetchSourceContext withoutWindowVectors(FetchSourceContext user, boolean chunks, SesaFieldNames names) {
        if (user != null || chunks == false) {
            return user;
        }
        return new FetchSourceContext(true, new String[0], new String[] { names.chunksDense() });
    }

    /**
     * The user's {@code _source} setting widened by {@code needed} fields, or the same instance when it already
     * returns them (no setting means the full source).
     */
    static FetchSourceContext widen(FetchSourceContext user, List<String> needed) {
        if (user == null || needed.isEmpty()) {
            return user;
        }
        if (user.fetchSource() == false) {
            return new FetchSourceContext(true, needed.toArray(String[]::new), new String[0]);
        }
        boolean changed = false;
        List<String> includes = new ArrayList<>(Arrays.asList(user.includes()));
        if (includes.isEmpty() == false) {
            for (String f : needed) {
                if (Regex.simpleMatch(user.includes(), f) == false) {
                    includes.add(f);
                    changed = true;
                }
            }
        }
        List<String> excludes = new ArrayList<>();
        for (String x : user.excludes()) {
            boolean hidesNeeded = needed.stream().anyMatch(f -> Regex.simpleMatch(x, f) || f.startsWith(x + "."));
            if (hidesNeeded) {
                changed = true;
            } else {
                excludes.add(x);
            }
        }
        return changed ? new FetchSourceContext(true, includes.toArray(String[]::new), excludes.toArray(String[]::new)) : user;
    }
}
