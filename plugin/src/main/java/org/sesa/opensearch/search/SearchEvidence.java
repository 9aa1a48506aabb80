package org.sesa.opensearch.search;

import org.sesa.opensearch.index.EvidenceRecord;
import org.sesa.opensearch.index.IndexEvidence;
import org.sesa.opensearch.index.IndexEvidenceLookup;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The evidence one search may score with: the record of the pipeline's target prefix, used only when every index
 * the search's candidates come from carries that same record ({@code sesa_fuse} resolves it once per search, from
 * the candidates' {@link DocKey}s, and {@code sesa_rerank} reads it from the plan). An extra signal earns its weight
 * with evidence measured on the collection it is used on; a search over indices without one, or whose records
 * differ, has none.
 *
 * @param kind    what the candidate indices say
 * @param record  the shared record ({@link Kind#SHARED} only)
 * @param indices the candidate indices, sorted and joined with commas ({@link Kind#SHARED} only)
 * @param reason  why the records were ignored ({@link Kind#INVALID} only)
 */
public record SearchEvidence(Kind kind, EvidenceRecord record, String indices, String reason) {

    /** Where a setting of a search came from, as {@code weights_source} and {@code weight_source} report it. */
    public static final String FROM_REQUEST = "request";
    public static final String FROM_INDEX_EVIDENCE = "index_evidence";
    public static final String FROM_PIPELINE = "pipeline";

    public enum Kind {
        /** No candidate, or no candidate index has a record. */
        NONE,
        /** Every candidate index has the same valid record. */
        SHARED,
        /** Some candidate indices have a record and others none, or their records differ. */
        MIXED,
        /** A candidate index has a malformed record. */
        INVALID
    }

    public static final SearchEvidence NONE = new SearchEvidence(Kind.NONE, null, null, null);

    /**
     * What the indices say about {@code prefix}: one lookup per distinct index (cached by the reader).
     *
     * @param indices the indices of the candidates (repeats allowed, null: a hit without one); empty: there is
     *                nothing to fuse
     */
    public static SearchEvidence resolve(Collection<String> indices, String prefix, IndexEvidenceLookup lookup) {
        TreeSet<String> distinct = new TreeSet<>();
        boolean absent = false;
        for (String index : indices) {
            if (index == null) {
                absent = true; // a hit that does not name its index: nothing can be known about it
            } else {
                distinct.add(index);
            }
        }
        EvidenceRecord shared = null;
        boolean differ = false;
        List<String> invalid = new ArrayList<>();
        for (String index : distinct) {
            IndexEvidence e = lookup.evidence(index, prefix);
            if (e.invalid() != null) {
                invalid.add("[" + index + "] " + e.invalid());
            } else if (e.record() == null) {
                absent = true;
            } else if (shared == null) {
                shared = e.record();
            } else if (shared.equals(e.record()) == false) {
                differ = true;
            }
        }
        if (invalid.isEmpty() == false) {
            return new SearchEvidence(Kind.INVALID, null, null, String.join("; ", invalid));
        }
        if (shared == null) {
            return NONE;
        }
        if (absent || differ) {
            return new SearchEvidence(Kind.MIXED, null, null, null);
        }
        return new SearchEvidence(Kind.SHARED, shared, String.join(",", distinct), null);
    }

    /** {@code request} when the request set it, else {@code index_evidence} when the record did, else {@code pipeline}. */
    public static String source(boolean fromRequest, boolean fromEvidence) {
        return fromRequest ? FROM_REQUEST : fromEvidence ? FROM_INDEX_EVIDENCE : FROM_PIPELINE;
    }

    /**
     * How the response reports it: {@code {"index": "<indices>", "measured": <the record's measured>}} for a shared
     * record, {@code "invalid"} or {@code "mixed"} when records were there but not used, null when there were none.
     */
    public Object report() {
        return switch (kind) {
            case SHARED -> {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("index", indices);
                m.put(EvidenceRecord.MEASURED, record.measured());
                yield m;
            }
            case INVALID -> "invalid";
            case MIXED -> "mixed";
            case NONE -> null;
        };
    }

    /** Adds {@code evidence} (and {@code evidence_reason} when invalid) to a response section; nothing when none. */
    public void reportInto(Map<String, Object> section) {
        Object report = report();
        if (report != null) {
            section.put("evidence", report);
        }
        if (reason != null) {
            section.put("evidence_reason", reason);
        }
    }
}
