package org.sesa.opensearch.search.processor;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.ingest.ConfigurationUtils;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.sesa.opensearch.index.ChunkFieldLookup;
import org.sesa.opensearch.index.SesaTextFieldLookup;
import org.sesa.opensearch.index.TargetModelsLookup;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.search.executors.BranchSearcher;
import org.sesa.opensearch.search.executors.ConceptStatsLookup;
import org.sesa.opensearch.search.executors.HybridSearchExecutor;
import org.sesa.opensearch.search.query.BranchQueryFactory;
import org.sesa.opensearch.util.SesaConventions;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Pattern;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/**
 * Parses and validates a {@code sesa_query} definition when the search pipeline is created, so mistakes are
 * reported by {@code PUT _search/pipeline} (400) and not by the first search.
 */
public final class SesaQueryProcessorFactory extends AbstractSesaProcessorFactory<SearchRequestProcessor, SesaQueryProcessor> {

    public static final String TARGET_PREFIX = "target_prefix";
    public static final String WINDOW_SIZE = "window_size";
    public static final String KNN_K = "knn_k";
    public static final String TOP_K_CONCEPTS = "top_k_concepts";
    public static final String CACHE_SIZE = "cache_size";
    public static final String CONCEPT_IDF = "concept_idf";

    public static final int DEFAULT_WINDOW_SIZE = 100;
    public static final int MAX_WINDOW_SIZE = 10_000;
    public static final int DEFAULT_KNN_K = 100;
    public static final int MAX_KNN_K = 10_000;
    public static final int DEFAULT_TOP_K_CONCEPTS = 32;
    public static final int MAX_TOP_K_CONCEPTS = 1024;
    public static final int DEFAULT_CACHE_SIZE = 1024;
    public static final int MAX_CACHE_SIZE = 100_000;

    /** {@code field} or {@code field^boost}, as multi_match accepts them. */
    private static final Pattern TEXT_FIELD = Pattern.compile("[^\\s^]+(\\^[0-9]+(\\.[0-9]+)?)?");

    private final Supplier<InferenceClient> client;
    private final BranchSearcher searcher;
    private final NamedXContentRegistry registry;
    private final TargetModelsLookup models;
    private final SesaTextFieldLookup sesaTextFields;
    private final ChunkFieldLookup chunkFields;
    private final ConceptStatsLookup conceptStats;

    /** A factory whose processors check no model record and know no sesa_text field (tests of everything else). */
    public SesaQueryProcessorFactory(Supplier<InferenceClient> client, BranchSearcher searcher, NamedXContentRegistry registry) {
        this(client, searcher, registry, TargetModelsLookup.NONE, SesaTextFieldLookup.NONE);
    }

    /** A factory whose processors know no sesa_text field (tests of the model check). */
    public SesaQueryProcessorFactory(
        Supplier<InferenceClient> client,
        BranchSearcher searcher,
        NamedXContentRegistry registry,
        TargetModelsLookup models
    ) {
        this(client, searcher, registry, models, SesaTextFieldLookup.NONE);
    }

    /**
     * @param client   supplier, because pipeline factories are built before the plugin's components
     * @param searcher runs the side branches and the page backfill ({@code ParallelBranchSearcher} on a node)
     * @param registry the node's registry, to parse knn and rank_feature queries
     * @param models   the models a search's target indices record ({@code IndexSesaMeta} on a node), checked against
     *                 the query encoding
     * @param sesaTextFields the sesa_text fields of a search's target indices ({@code IndexSesaMeta} on a node), for
     *                 {@code ext.sesa.field}
     */
    public SesaQueryProcessorFactory(
        Supplier<InferenceClient> client,
        BranchSearcher searcher,
        NamedXContentRegistry registry,
        TargetModelsLookup models,
        SesaTextFieldLookup sesaTextFields
    ) {
        this(client, searcher, registry, models, sesaTextFields, ChunkFieldLookup.NONE);
    }

    /**
     * As above, with {@code chunkFields}: whether a search's target indices hold {@code <prefix>_chunks}
     * ({@code TargetChunkFields} on a node), for the best-window dense branch; no concept statistics are read.
     */
    public SesaQueryProcessorFactory(
        Supplier<InferenceClient> client,
        BranchSearcher searcher,
        NamedXContentRegistry registry,
        TargetModelsLookup models,
        SesaTextFieldLookup sesaTextFields,
        ChunkFieldLookup chunkFields
    ) {
        this(client, searcher, registry, models, sesaTextFields, chunkFields, ConceptStatsLookup.NONE);
    }

    /**
     * As above, with {@code conceptStats}: the concepts' document frequencies in a search's target indices
     * ({@code SearchConceptStats} on a node), for the concept branch's idf ({@code concept_idf}).
     */
    public SesaQueryProcessorFactory(
        Supplier<InferenceClient> client,
        BranchSearcher searcher,
        NamedXContentRegistry registry,
        TargetModelsLookup models,
        SesaTextFieldLookup sesaTextFields,
        ChunkFieldLookup chunkFields,
        ConceptStatsLookup conceptStats
    ) {
        this.conceptStats = java.util.Objects.requireNonNull(conceptStats);
        this.chunkFields = java.util.Objects.requireNonNull(chunkFields);
        this.client = client;
        this.searcher = searcher;
        this.registry = registry;
        this.models = java.util.Objects.requireNonNull(models);
        this.sesaTextFields = java.util.Objects.requireNonNull(sesaTextFields);
    }

    @Override
    SesaQueryProcessor newProcessor(String tag, String description, boolean ignoreFailure, Map<String, Object> config) {
        String type = SesaQueryProcessor.TYPE;
        List<String> textFields = readTextFields(tag, config);
        String prefix = ConfigurationUtils.readStringProperty(type, tag, config, TARGET_PREFIX, SesaConventions.get().defaultTargetPrefix());
        checkPrefix(tag, prefix);
        int window = readRange(tag, config, WINDOW_SIZE, DEFAULT_WINDOW_SIZE, 1, MAX_WINDOW_SIZE);
        int knnK = readRange(tag, config, KNN_K, DEFAULT_KNN_K, 1, MAX_KNN_K);
        int topK = readRange(tag, config, TOP_K_CONCEPTS, DEFAULT_TOP_K_CONCEPTS, 0, MAX_TOP_K_CONCEPTS);
        int cacheSize = readRange(tag, config, CACHE_SIZE, DEFAULT_CACHE_SIZE, 0, MAX_CACHE_SIZE);
        TimeValue timeout = readTimeout(type, tag, config, TIMEOUT);
        boolean strict = ConfigurationUtils.readBooleanProperty(type, tag, config, STRICT, false);
        boolean conceptIdf = ConfigurationUtils.readBooleanProperty(type, tag, config, CONCEPT_IDF, true);
        BranchQueryFactory queries = new BranchQueryFactory(textFields, SesaFieldNames.forPrefix(prefix), knnK, registry);
        HybridSearchExecutor executor = new HybridSearchExecutor(type, queries, window, topK, cacheSize, timeout, strict, client.get(), searcher, models, sesaTextFields, chunkFields, conceptIdf, conceptStats);
        return new SesaQueryProcessor(tag, description, ignoreFailure, executor);
    }

    private static List<String> readTextFields(String tag, Map<String, Object> config) {
        return readFieldNames(
            SesaQueryProcessor.TYPE,
            tag,
            config,
            TEXT_FIELDS,
            DEFAULT_TEXT_FIELDS,
            s -> TEXT_FIELD.matcher(s).matches(),
            "must be a non-empty list of field names such as [\"title^2\", \"text\"]",
            "entries must be field names, optionally with a boost such as \"title^2\""
        );
    }

    static void checkPrefix(String tag, String p) {
        String type = SesaQueryProcessor.TYPE;
        if (p.isEmpty() || p.chars().anyMatch(Character::isWhitespace)) {
            throw newConfigurationException(type, tag, TARGET_PREFIX, "must be non-empty and contain no whitespace, got [" + p + "]");
        }
        if (p.startsWith(".") || p.endsWith(".") || p.contains("..") || p.startsWith("_")) {
            throw newConfigurationException(type, tag, TARGET_PREFIX, "must be a field path (no leading '_' or '.', no empty path elements), got [" + p + "]");
        }
    }

    static int readRange(String tag, Map<String, Object> config, String key, int def, int min, int max) {
        return readRange(SesaQueryProcessor.TYPE, tag, config, key, def, min, max);
    }
}
