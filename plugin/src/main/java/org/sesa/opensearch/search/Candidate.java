package org.sesa.opensearch.search;

import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.search.SearchHit;

import java.util.Map;

/**
 * One document of the fused candidate set: the hit it was first seen in (the main branch wins, it carries
 * highlights), its raw branch scores and ranks, the fused score and, after {@code sesa_rerank}, the rerank score.
 */
public final class Candidate {

    private final DocKey key;
    private final SearchHit hit;
    private final BytesReference fetchedSource;
    private final Float[] raw;
    private final int[] ranks;
    private final double fused;
    private Map<String, Object> sourceMap;
    private boolean sourceParsed;

    public Candidate(DocKey key, SearchHit hit, Float[] raw, int[] ranks, double fused) {
        this.key = key;
        this.hit = hit;
        this.fetchedSource = hit.getSourceRef();
        this.raw = raw.clone();
        this.ranks = ranks.clone();
        this.fused = fused;
    }

    public DocKey key() {
        return key;
    }

    public SearchHit hit() {
        return hit;
    }

    /** Raw score of {@code b}, null when the document was not in that branch's window. */
    public Float raw(Branch b) {
        return raw[b.ordinal()];
    }

    /** 1-based rank in {@code b}'s window, 0 when absent. */
    public int rank(Branch b) {
        return ranks[b.ordinal()];
    }

    public double fused() {
        return fused;
    }

    /** The fetched {@code _source} as a map (null when none was fetched); parsed once. */
    public synchronized Map<String, Object> source() {
        if (sourceParsed == false) {
            sourceParsed = true;
            sourceMap = fetchedSource == null ? null : XContentHelper.convertToMap(fetchedSource, false).v2();
        }
        return sourceMap;
    }
}
