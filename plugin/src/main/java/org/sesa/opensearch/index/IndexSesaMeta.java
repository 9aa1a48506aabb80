package org.sesa.opensearch.index;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.action.IndicesRequest;
import org.opensearch.action.support.IndicesOptions;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexAbstraction;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Metadata;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.sesa.opensearch.ingest.ModelMetaLookup;
import org.sesa.opensearch.mapper.MappingMaps;
import org.sesa.opensearch.mapper.MappingMaps.SesaTextField;
import org.sesa.opensearch.util.SesaConventions;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The one reader of an index mapping's {@code _meta.<index_meta_key>} section (conventions.json; {@code sesa}) in the
 * local cluster state, for ingest and search:
 *
 * <ul>
 *   <li>{@link #models}: {@code _meta.sesa.models.<prefix>} of the write index behind an index, alias or data stream,
 *       the models {@code sesa_encode} checks the server's against;</li>
 *   <li>{@link #expectedChunking}: {@code _meta.sesa.chunking.<prefix>} of the write index, how its documents were cut
 *       into windows, which {@code sesa_encode} checks its own {@code chunking} option against;</li>
 *   <li>{@link #evidence}: {@code _meta.sesa.<index_evidence_key>.<prefix>} ({@code evidence}) of a concrete index,
 *       the {@link EvidenceRecord} that lets {@code sesa_fuse} and {@code sesa_rerank} score with what was measured
 *       on that collection;</li>
 *   <li>{@link #targetModels(IndicesRequest, String)}: {@code _meta.sesa.models.<prefix>} of every concrete index a search
 *       targets, combined ({@link TargetModels}), the models {@code sesa_query} checks the query encoding against;</li>
 *   <li>{@link #conceptSpace(IndicesRequest, String)}: whether a field is a {@code sesa_text} field of every concrete
 *       index a search targets, and its concept space, for {@code ext.sesa.field}.</li>
 * </ul>
 *
 * Each index's section is parsed once per index UUID and mapping version (a new mapping, e.g. a record written by
 * {@code sesa tune}, has a new version), so a lookup is a map lookup. What a search's targets record is kept per
 * target expression and cluster metadata version (an index created or deleted, an alias moved or a mapping changed
 * makes a new version), so a search that repeats its targets resolves them once. A malformed evidence record is ignored with one
 * WARN log per index and mapping version, and reported by {@link #evidence} as {@linkplain IndexEvidence#invalid
 * invalid}; it never fails a search or a document.
 */
public final class IndexSesaMeta implements IndexEvidenceLookup, TargetModelsLookup, SesaTextFieldLookup, ModelMetaLookup {

    private static final Logger logger = LogManager.getLogger(IndexSesaMeta.class);
    private static final int MAX_CACHED = 1024;
    static final String MODELS = "models";
    static final String CHUNKING = "chunking";

    /**
     * One index version's section: models and evidence per target prefix, and, from its properties, its sesa_text
     * fields (path to concept space) and how every other top-level-or-nested field path asked about is mapped.
     */
    private record Section(
        Map<String, Object> models,
        Map<String, Object> chunking,
        Map<String, IndexEvidence> evidence,
        IndexEvidence allEvidence,
        Map<String, String> sesaText,
        Map<String, Object> properties
    ) {
        IndexEvidence evidence(String prefix) {
            return allEvidence != null ? allEvidence : evidence.getOrDefault(prefix, IndexEvidence.ABSENT);
        }

        Section withFields(Map<String, String> sesaText, Map<String, Object> properties) {
            return new Section(models, chunking, evidence, allEvidence, sesaText, properties);
        }
    }

    private static final Section EMPTY = new Section(Map.of(), Map.of(), Map.of(), null, Map.of(), Map.of());

    /** The targets of one search in one metadata version: what {@link #targetModels(IndicesRequest, String)} caches. */
    private record Targets(String clusterUUID, long metadataVersion, List<String> expressions, boolean open, boolean closed, boolean hidden, String prefix) {}

    private final Supplier<ClusterState> state;
    private final Supplier<IndexNameExpressionResolver> resolver;
    private final String metaKey = SesaConventions.get().indexMetaKey();
    private final String evidenceKey = SesaConventions.get().indexEvidenceKey();
    private final Map<String, Section> cache = new ConcurrentHashMap<>();
    private final Map<Targets, TargetModels> targets = new ConcurrentHashMap<>();
    /** Chunking records of indices not created yet, from their templates, per cluster metadata version and name. */
    private final Map<String, Map<String, Object>> templateChunking = new ConcurrentHashMap<>();

    /** A reader that resolves search targets with a resolver of its own (tests; the node passes its own). */
    public IndexSesaMeta(Supplier<ClusterState> state) {
        this(state, ownResolver());
    }

    /**
     * @param state    the node's applied cluster state (null before it has one)
     * @param resolver the node's index name resolver (null before the node made it): expands a search's targets
     */
    public IndexSesaMeta(Supplier<ClusterState> state, Supplier<IndexNameExpressionResolver> resolver) {
        this.state = state;
        this.resolver = resolver;
    }

    private static Supplier<IndexNameExpressionResolver> ownResolver() {
        IndexNameExpressionResolver r = new IndexNameExpressionResolver(new ThreadContext(Settings.EMPTY));
        return () -> r;
    }

    /**
     * The expected value of {@code _meta.<index_meta_key>.models.<prefix>} of the write index behind {@code target}
     * (a map such as {@code {"dense": "id@v", "concepts": "id@v"}}, or a string naming the dense model), or null: the
     * target is unknown (it will be auto-created), has no write index, or records nothing for the prefix.
     */
    public Object models(String target, String prefix) {
        ClusterState cs = target == null ? null : state.get();
        if (cs == null) {
            return null;
        }
        IndexMetadata im = writeIndex(cs, target);
        return im == null ? null : section(im).models().get(prefix);
    }

    @Override
    public Object expectedModels(String index, String prefix) {
        return models(index, prefix);
    }

    /**
     * The value of {@code _meta.<index_meta_key>.chunking.<prefix>} of the write index behind {@code target}: how its
     * documents' texts were cut into windows ({@code sesa_encode}'s {@code chunking} option, or {@code "off"}), or null
     * when it records nothing (as {@link #models}).
     */
    @Override
    public Object expectedChunking(String target, String prefix) {
        ClusterState cs = target == null ? null : state.get();
        if (cs == null) {
            return null;
        }
        Metadata metadata = cs.metadata();
        IndexAbstraction abstraction = metadata.getIndicesLookup().get(target);
        if (abstraction != null) {
            IndexMetadata im = abstraction.getWriteIndex();
            return im == null ? null : section(im).chunking().get(prefix);
        }
        // not created yet: the bulk creates it from its template, whose record then holds every later document, so the
        // first ones are held to it too
        String key = metadata.clusterUUID() + "/" + metadata.version() + "/" + target;
        Map<String, Object> recorded = templateChunking.get(key);
        if (recorded == null) {
            if (templateChunking.size() >= MAX_CACHED) {
                templateChunking.clear();
            }
            recorded = templateChunking.computeIfAbsent(key, k -> templateChunking(cs, target));
        }
        return recorded.get(prefix);
    }

    /** {@code _meta.<key>.chunking} of the mappings the templates would give a new index {@code index} (the last wins). */
    private Map<String, Object> templateChunking(ClusterState cs, String index) {
        Map<String, Object> out = new HashMap<>();
        TargetMappingCheck.TemplateMappings t = TargetMappingCheck.TemplateMappings.of(cs, index);
        for (Map<String, Object> mapping : t.mappings()) {
            if (MappingMaps.root(mapping).get(MappingMaps.META) instanceof Map<?, ?> meta
                && meta.get(metaKey) instanceof Map<?, ?> sesa
                && sesa.get(CHUNKING) instanceof Map<?, ?> chunking) {
                chunking.forEach((k, v) -> out.put(String.valueOf(k), v));
            }
        }
        return Collections.unmodifiableMap(out);
    }

    private static IndexMetadata writeIndex(ClusterState cs, String target) {
        IndexAbstraction abstraction = cs.metadata().getIndicesLookup().get(target);
        return abstraction == null ? null : abstraction.getWriteIndex();
    }

    @Override
    public IndexEvidence evidence(String index, String prefix) {
        ClusterState cs = index == null ? null : state.get();
        IndexMetadata im = cs == null ? null : cs.metadata().index(index);
        return im == null ? IndexEvidence.ABSENT : section(im).evidence(prefix);
    }

    /**
     * What the concrete indices behind {@code request}'s targets record for {@code prefix}. Targets are expanded with
     * the request's wildcard options, leniently: a missing index is no record here (the search itself reports it).
     * Indices of a remote cluster ({@code cluster:index}) are not known locally and record nothing.
     */
    @Override
    public TargetModels targetModels(IndicesRequest request, String prefix) {
        ClusterState cs = state.get();
        IndexNameExpressionResolver r = resolver.get();
        if (cs == null || r == null) {
            return TargetModels.NONE;
        }
        List<String> local = localExpressions(request);
        if (local == null) {
            return TargetModels.NONE; // remote indices only
        }
        IndicesOptions o = request.indicesOptions() == null ? IndicesOptions.strictExpandOpen() : request.indicesOptions();
        Metadata metadata = cs.metadata();
        Targets key = new Targets(
            metadata.clusterUUID(),
            metadata.version(),
            List.copyOf(local),
            o.expandWildcardsOpen(),
            o.expandWildcardsClosed(),
            o.expandWildcardsHidden(),
            prefix
        );
        TargetModels cached = targets.get(key);
        if (cached != null) {
            return cached;
        }
        String[] concrete;
        try {
            IndicesOptions lenient = IndicesOptions.fromOptions(true, true, o.expandWildcardsOpen(), o.expandWildcardsClosed(), o.expandWildcardsHidden());
            concrete = r.concreteIndexNames(cs, lenient, local.toArray(new String[0]));
        } catch (RuntimeException e) {
            return TargetModels.NONE; // an expression the resolver rejects: the search fails with its reason
        }
        SortedMap<String, Object> recorded = new TreeMap<>();
        for (String index : concrete) {
            IndexMetadata im = metadata.index(index);
            Object models = im == null ? null : section(im).models().get(prefix);
            if (models != null) {
                recorded.put(index, models);
            }
        }
        TargetModels found = TargetModels.of(recorded, "_meta." + metaKey + "." + MODELS + "." + prefix);
        if (targets.size() >= MAX_CACHED) {
            targets.clear();
        }
        targets.put(key, found);
        return found;
    }

    /**
     * The concept space of sesa_text field {@code field} in the concrete indices {@code request} targets (expanded
     * leniently, as for the model check: a missing index is the search's to report). Every one of them must map
     * {@code field} as sesa_text, in one concept space.
     */
    @Override
    public String conceptSpace(IndicesRequest request, String field) {
        ClusterState cs = state.get();
        IndexNameExpressionResolver r = resolver.get();
        if (cs == null || r == null) {
            throw new IllegalArgumentException("[ext.sesa.field] [" + field + "] cannot be checked: the node has no cluster state yet");
        }
        String[] concrete = concreteLocalIndices(cs, r, request);
        if (concrete.length == 0) {
            throw new IllegalArgumentException(
                "[ext.sesa.field] [" + field + "] must be a sesa_text field of the target indices, but the search targets no local index"
            );
        }
        Map<String, List<String>> bySpace = new LinkedHashMap<>();
        for (String index : concrete) {
            IndexMetadata im = cs.metadata().index(index);
            Section s = im == null ? EMPTY : section(im);
            String space = s.sesaText().get(field);
            if (space == null) {
                Map<String, Object> mapped = MappingMaps.field(s.properties(), field);
                String is = mapped == null ? "it is not mapped there" : "it is mapped as [" + MappingMaps.describe(mapped) + "] there";
                throw new IllegalArgumentException(
                    "[ext.sesa.field] ["
                        + field
                        + "] is not a sesa_text field of index ["
                        + index
                        + "] ("
                        + is
                        + (s.sesaText().isEmpty() ? "; it has no sesa_text field" : "; its sesa_text fields are " + s.sesaText().keySet())
                        + "): name a sesa_text field, or leave field out to search the pipeline's fields"
                );
            }
            bySpace.computeIfAbsent(space, k -> new ArrayList<>()).add(index);
        }
        if (bySpace.size() > 1) {
            List<String> described = new ArrayList<>();
            bySpace.forEach((space, indices) -> described.add("[" + (space.isEmpty() ? "<server default>" : space) + "] in " + indices));
            throw new IllegalArgumentException(
                "[ext.sesa.field] ["
                    + field
                    + "] maps its text into different concept spaces in the target indices ("
                    + String.join(", ", described)
                    + "): one query encoding cannot be compared with all of them; search them in separate requests"
            );
        }
        return bySpace.keySet().iterator().next();
    }

    /** The local concrete indices behind {@code request}'s targets, expanded leniently with its wildcard options. */
    private static String[] concreteLocalIndices(ClusterState cs, IndexNameExpressionResolver r, IndicesRequest request) {
        List<String> local = localExpressions(request);
        if (local == null) {
            return new String[0];
        }
        IndicesOptions o = request.indicesOptions() == null ? IndicesOptions.strictExpandOpen() : request.indicesOptions();
        IndicesOptions lenient = IndicesOptions.fromOptions(true, true, o.expandWildcardsOpen(), o.expandWildcardsClosed(), o.expandWildcardsHidden());
        try {
            return r.concreteIndexNames(cs, lenient, local.toArray(new String[0]));
        } catch (RuntimeException e) {
            return new String[0];
        }
    }

    /** The request's target expressions that name local indices; null when it names remote indices only. */
    private static List<String> localExpressions(IndicesRequest request) {
        String[] given = request.indices() == null ? new String[0] : request.indices();
        List<String> local = new ArrayList<>(given.length);
        for (String expression : given) {
            if (isRemote(expression) == false) {
                local.add(expression);
            }
        }
        return local.isEmpty() && given.length > 0 ? null : local;
    }

    /** {@code cluster:index} names an index of a remote cluster; a date math expression may hold a colon of its own. */
    private static boolean isRemote(String expression) {
        return expression.startsWith("<") == false && expression.indexOf(':') > 0;
    }

    private Section section(IndexMetadata im) {
        String key = im.getIndexUUID() + "/" + im.getMappingVersion();
        Section s = cache.get(key);
        if (s == null) {
            if (cache.size() >= MAX_CACHED) {
                cache.clear();
            }
            // computeIfAbsent: one parse, and so one WARN, per index version even when searches race for it
            s = cache.computeIfAbsent(key, k -> read(im));
        }
        return s;
    }

    private Section read(IndexMetadata im) {
        MappingMetadata mapping = im.mapping();
        Map<String, Object> source = mapping == null ? Map.of() : mapping.sourceAsMap();
        Map<String, Object> properties = MappingMaps.properties(source);
        Map<String, String> sesaText = new LinkedHashMap<>();
        for (SesaTextField f : MappingMaps.sesaTextFields(properties).values()) {
            sesaText.put(f.path(), f.conceptSpace());
        }
        return readMeta(im, source).withFields(Collections.unmodifiableMap(sesaText), properties);
    }

    @SuppressWarnings("unchecked")
    private Section readMeta(IndexMetadata im, Map<String, Object> source) {
        Object meta = source.get("_meta");
        if (!(meta instanceof Map<?, ?> m) || !(m.get(metaKey) instanceof Map<?, ?> sesa)) {
            return EMPTY;
        }
        Map<String, Object> models = sesa.get(MODELS) instanceof Map<?, ?> mm
            ? Collections.unmodifiableMap(new HashMap<>((Map<String, Object>) mm))
            : Map.of();
        Map<String, Object> chunking = sesa.get(CHUNKING) instanceof Map<?, ?> cm
            ? Collections.unmodifiableMap(new HashMap<>((Map<String, Object>) cm))
            : Map.of();
        Object records = sesa.get(evidenceKey);
        if (records == null) {
            return new Section(models, chunking, Map.of(), null, Map.of(), Map.of());
        }
        String where = "_meta." + metaKey + "." + evidenceKey;
        if (records instanceof Map<?, ?> == false) {
            String reason = "[" + where + "] must be an object of records per target prefix, got [" + records + "]";
            warn(im, reason);
            return new Section(models, chunking, Map.of(), IndexEvidence.invalid(reason), Map.of(), Map.of());
        }
        Map<String, IndexEvidence> evidence = new HashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) records).entrySet()) {
            String prefix = String.valueOf(e.getKey());
            try {
                evidence.put(prefix, IndexEvidence.of(EvidenceRecord.parse(e.getValue())));
            } catch (IllegalArgumentException ex) {
                String reason = "[" + where + "." + prefix + "] " + ex.getMessage();
                warn(im, reason);
                evidence.put(prefix, IndexEvidence.invalid(reason));
            }
        }
        return new Section(models, chunking, Map.copyOf(evidence), null, Map.of(), Map.of());
    }

    private static void warn(IndexMetadata im, String reason) {
        logger.warn(
            "ignoring the evidence record of index [{}] (mapping version {}); its searches use the pipeline's settings: {}",
            im.getIndex().getName(),
            im.getMappingVersion(),
            reason
        );
    }
}
