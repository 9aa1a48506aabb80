package org.sesa.opensearch.search;

import org.opensearch.index.seqno.SequenceNumbers;
import org.opensearch.search.SearchHit;

import java.util.Comparator;

/**
 * Identity of a hit across the branch searches of one SESA search and the fetch of the page.
 *
 * <p>The branch searches load no stored field at all: reading {@code _id} decompresses the stored-field block that
 * holds the source too (measured: 2.5 ms of a 5 ms k-NN search with a window of 100). A hit is therefore named by
 * the operation that wrote it on its shard: index, shard, {@code _seq_no} and {@code _primary_term}, read from doc
 * values. Each live document of a shard has its own sequence number, and every copy of the shard gives that
 * document the same one. Ordered by index, shard, sequence number, term.
 *
 * @param index       the index, prefixed with {@code cluster:} for a remote cluster's hit
 * @param shard       the shard number, -1 when the hit does not say
 * @param seqNo       {@code _seq_no}
 * @param primaryTerm {@code _primary_term}
 */
public record DocKey(String index, int shard, long seqNo, long primaryTerm) implements Comparable<DocKey> {

    private static final Comparator<DocKey> ORDER = Comparator.comparing(DocKey::index, Comparator.nullsFirst(Comparator.naturalOrder()))
        .thenComparingInt(DocKey::shard)
        .thenComparingLong(DocKey::seqNo)
        .thenComparingLong(DocKey::primaryTerm);

    /**
     * The key of a hit.
     *
     * @throws IllegalStateException when the hit was fetched without {@code _seq_no}
     */
    public static DocKey of(SearchHit hit) {
        String index = hit.getClusterAlias() == null ? hit.getIndex() : hit.getClusterAlias() + ":" + hit.getIndex();
        if (hit.getSeqNo() == SequenceNumbers.UNASSIGNED_SEQ_NO) {
            throw new IllegalStateException("a SESA branch hit of [" + index + "] carries no _seq_no");
        }
        int shard = hit.getShard() == null ? -1 : hit.getShard().getShardId().id();
        return new DocKey(index, shard, hit.getSeqNo(), hit.getPrimaryTerm());
    }

    @Override
    public int compareTo(DocKey o) {
        return ORDER.compare(this, o);
    }
}
