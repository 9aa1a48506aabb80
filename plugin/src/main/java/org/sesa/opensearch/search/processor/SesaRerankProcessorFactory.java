package org.sesa.opensearch.search.processor;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.ingest.ConfigurationUtils;
import org.opensearch.search.pipeline.SearchResponseProcessor;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.search.ext.SesaSearchExt;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/** Parses and validates a {@code sesa_rerank} definition at pipeline creation. */
public final class SesaRerankProcessorFactory extends AbstractSesaProcessorFactory<SearchResponseProcessor, SesaRerankProcessor> {

    /** The default of {@link #TIMEOUT}. */
    public static final TimeValue DEFAULT_TIMEOUT = TimeValue.timeValueSeconds(5);
    // each option's key, then its default and limit where it has them
    public static final String TOP_N = "top_n";
    public static final int DEFAULT_TOP_N = 50;
    public static final String BY_DEFAULT = "by_default";
    public static final String MAX_CHUNKS = "max_chunks";
    public static final int MAX_MAX_CHUNKS = 256;
    public static final String RERANK_WEIGHT = "rerank_weight";
    /** Pure cross-encoder score, as before the blend existed. */
    public static final double DEFAULT_RERANK_WEIGHT = 1.0;
    public static final String OUT_OF_DOMAIN = "out_of_domain";
    /**
     * Keep the fused order for a query the server reports outside the reranker's domain (its blend weight was chosen
     * on in-domain queries only); saves the cross-encoder's time too.
     */
    public static final String DEFAULT_OUT_OF_DOMAIN = SesaSearchExt.SKIP;
    public static final String PASSAGE = "passage";
    /** Rerank the window the dense branch matched ({@code _sesa.passage}) when a hit has one. */
    public static final String PASSAGE_BEST = "best";
    /** Rerank the document's text from its start (the first window, with {@code max_chunks: 1}), chunked or not. */
    public static final String PASSAGE_FIRST = "first";
    public static final String DEFAULT_PASSAGE = PASSAGE_BEST;
    public static final String WITHOUT_EVIDENCE = "without_evidence";
    /**
     * Keep the fused order when the candidates' indices have no evidence record saying rerank helps on them: an extra
     * signal earns its place with evidence measured on the collection it is used on.
     */
    public static final String DEFAULT_WITHOUT_EVIDENCE = SesaSearchExt.SKIP;

    private final Supplier<InferenceClient> client;

    public SesaRerankProcessorFactory(Supplier<InferenceClient> client) {
        this.client = client;
    }

    @Override
    SesaRerankProcessor newProcessor(String tag, String description, boolean ignoreFailure, Map<String, Object> config) {
        String type = SesaRerankProcessor.TYPE;
        List<String> fields = readFieldNames(
            type,
            tag,
            config,
            TEXT_FIELDS,
            DEFAULT_TEXT_FIELDS,
            s -> s.isBlank() == false && s.chars().noneMatch(Character::isWhitespace) && s.contains("^") == false,
            "must be a non-empty list of field names such as [\"title\", \"text\"]",
            "entries must be plain field names (no boosts)"
        );
        int topN = readRange(type, tag, config, TOP_N, DEFAULT_TOP_N, 1, SesaSearchExt.MAX_TOP_N);
        TimeValue timeout = readTimeout(type, tag, config, TIMEOUT);
        boolean strict = ConfigurationUtils.readBooleanProperty(type, tag, config, STRICT, false);
        boolean byDefault = ConfigurationUtils.readBooleanProperty(type, tag, config, BY_DEFAULT, false);
        int maxChunks = readRange(type, tag, config, MAX_CHUNKS, 0, 0, MAX_MAX_CHUNKS);
        double rerankWeight = readUnitInterval(type, tag, config, RERANK_WEIGHT, DEFAULT_RERANK_WEIGHT);
        boolean skipOutOfDomain = readSkipOrRerank(type, tag, config, OUT_OF_DOMAIN, DEFAULT_OUT_OF_DOMAIN);
        boolean skipWithoutEvidence = readSkipOrRerank(type, tag, config, WITHOUT_EVIDENCE, DEFAULT_WITHOUT_EVIDENCE);
        boolean bestWindow = readPassage(type, tag, config);
        return new SesaRerankProcessor(
            tag,
            description,
            ignoreFailure,
            fields,
            topN,
            timeout != null ? timeout : DEFAULT_TIMEOUT,
            strict,
            byDefault,
            maxChunks,
            rerankWeight,
            skipOutOfDomain,
            skipWithoutEvidence,
            bestWindow,
            client.get()
        );
    }

    /** {@code "best"} (true) or {@code "first"} (false); {@link #DEFAULT_PASSAGE} when absent. */
    private static boolean readPassage(String type, String tag, Map<String, Object> config) {
        Object value = config.remove(PASSAGE);
        Object passage = value == null ? DEFAULT_PASSAGE : value;
        if (PASSAGE_BEST.equals(passage) || PASSAGE_FIRST.equals(passage)) {
            return PASSAGE_BEST.equals(passage);
        }
        throw newConfigurationException(type, tag, PASSAGE,
            "must be \"" + PASSAGE_BEST + "\" (the window the dense branch matched) or \"" + PASSAGE_FIRST
                + "\" (the text from its start), got [" + value + "]");
    }

    /** {@code "skip"} (true) or {@code "rerank"} (false); {@code def} when absent. */
    private static boolean readSkipOrRerank(String type, String tag, Map<String, Object> config, String key, String def) {
        Object value = config.remove(key);
        try {
            return SesaSearchExt.parseSkipOrRerank(value == null ? def : value, key);
        } catch (IllegalArgumentException e) {
            throw newConfigurationException(
                type,
                tag,
                key,
                "must be \"" + SesaSearchExt.SKIP + "\" or \"" + SesaSearchExt.RERANK_ANYWAY + "\", got [" + value + "]"
            );
        }
    }
}
