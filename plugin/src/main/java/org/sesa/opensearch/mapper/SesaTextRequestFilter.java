package org.sesa.opensearch.mapper;

import org.opensearch.action.ActionRequest;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.admin.indices.template.put.PutComponentTemplateAction;
import org.opensearch.action.admin.indices.template.put.PutComposableIndexTemplateAction;
import org.opensearch.action.support.ActionFilter;
import org.opensearch.action.support.ActionFilterChain;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.ComponentTemplate;
import org.opensearch.cluster.metadata.ComposableIndexTemplate;
import org.opensearch.cluster.metadata.IndexMetadata;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.cluster.metadata.Template;
import org.opensearch.common.compress.CompressedXContent;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.action.ActionResponse;
import org.opensearch.tasks.Task;
import org.sesa.opensearch.util.ChunkingOption;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Supplier;

/**
 * What the {@code sesa_text} mapping transformer cannot do itself, done to the request before OpenSearch runs it:
 *
 * <ul>
 *   <li><b>Create index</b> and <b>put composable index template</b> with a sesa_text field and no {@code index.knn}
 *       setting: {@code index.knn: true} is added (a knn_vector with a method needs it; a transformer only sees the
 *       mapping), and {@code index.knn.derived_source.enabled: false} unless set (see {@link #withKnnDefaults}). An
 *       explicit {@code index.knn: false} is left for the k-NN plugin to refuse.</li>
 *   <li><b>Put mapping</b> with a sesa_text field: refused (400) when a target index has no {@code index.knn: true},
 *       which cannot be set on an existing index; and when the request carries no {@code _meta}, the index's current
 *       {@code _meta} is put into it, so the models record the transformer adds merges into the index's {@code _meta}
 *       instead of replacing it (a mapping update replaces {@code _meta} whole: other targets' model records and the
 *       evidence records would be lost).</li>
 * </ul>
 *
 * And in both, and in <b>put component template</b>: a sesa_text field whose mapping has no {@code chunking} gets
 * {@link #DEFAULT_CHUNKING} written into it ({@code sesa_encode}'s defaults, which the shipped pipeline uses), so long
 * texts are chunked by default while a stored mapping keeps what it says: the parameter is written, never implied, so a
 * field stored without it (created before this default) stays whole-text, and a put mapping that repeats such a field
 * is left as it is (only fields new to every target index get the default). {@code "chunking": {"max_windows": 1}}
 * keeps the first window only, as fields without chunking did.
 *
 * <p>Requests without sesa_text fields pass untouched.
 */
public final class SesaTextRequestFilter implements ActionFilter {

    static final String KNN_SETTING = "index.knn";
    static final String DERIVED_SOURCE_SETTING = "index.knn.derived_source.enabled";
    /** The {@code chunking} a new sesa_text field gets when it names none: every key at its default. */
    static final Map<String, Object> DEFAULT_CHUNKING = ChunkingOption.toMap(
        ChunkingOption.parse(Map.of(), (where, what) -> new IllegalStateException(where + " " + what))
    );

    private final Supplier<ClusterState> state;
    private final Supplier<IndexNameExpressionResolver> resolver;

    public SesaTextRequestFilter(Supplier<ClusterState> state, Supplier<IndexNameExpressionResolver> resolver) {
        this.state = state;
        this.resolver = resolver;
    }

    @Override
    public int order() {
        return 0;
    }

    @Override
    public <Request extends ActionRequest, Response extends ActionResponse> void apply(
        Task task,
        String action,
        Request request,
        ActionListener<Response> listener,
        ActionFilterChain<Request, Response> chain
    ) {
        try {
            if (request instanceof CreateIndexRequest create) {
                onCreateIndex(create);
            } else if (request instanceof PutMappingRequest put) {
                onPutMapping(put);
            } else if (request instanceof PutComposableIndexTemplateAction.Request template) {
                onPutTemplate(template);
            } else if (request instanceof PutComponentTemplateAction.Request component) {
                onPutComponentTemplate(component);
            }
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        chain.proceed(task, action, request, listener);
    }

    static Map<String, Object> parse(String json) {
        if (json == null || json.isBlank()) {
            return Map.of();
        }
        return XContentHelper.convertToMap(JsonXContent.jsonXContent, json, true);
    }

    static boolean hasSesaText(Map<String, Object> mapping) {
        return MappingMaps.sesaTextFields(MappingMaps.properties(mapping)).isEmpty() == false;
    }

    /** Whether {@code settings} say anything about {@code index.knn} (as {@code index.knn} or, before normalization, {@code knn}). */
    static boolean setsKnn(Settings settings) {
        return settings != null && (settings.get(KNN_SETTING) != null || settings.get("knn") != null);
    }

    /**
     * {@code settings} with what a sesa_text index needs and the user did not say: {@code index.knn: true}, and
     * {@code index.knn.derived_source.enabled: false} (with k-NN 3.5 a fetch after a segment merge fails with
     * AlreadyClosedException when derived source is on, k-NN issue #3458; the sesa-* template turns it off too).
     * Explicit values are kept. Null when nothing is missing.
     */
    static Settings withKnnDefaults(Settings settings) {
        Settings given = settings == null ? Settings.EMPTY : settings;
        boolean knn = setsKnn(given);
        boolean derived = given.get(DERIVED_SOURCE_SETTING) != null || given.get("knn.derived_source.enabled") != null;
        if (knn && derived) {
            return null;
        }
        Settings.Builder b = Settings.builder().put(given);
        if (knn == false) {
            b.put(KNN_SETTING, true);
        }
        if (derived == false) {
            b.put(DERIVED_SOURCE_SETTING, false);
        }
        return b.build();
    }

    /**
     * Writes {@link #DEFAULT_CHUNKING} into every sesa_text field of {@code mapping} (changed in place) that names no
     * {@code chunking} and whose path is not in {@code existing}; whether any changed.
     */
    static boolean withDefaultChunking(Map<String, Object> mapping, Set<String> existing) {
        boolean changed = false;
        for (MappingMaps.SesaTextField f : MappingMaps.sesaTextFields(MappingMaps.properties(mapping)).values()) {
            if (f.config().containsKey(SesaTextFieldMapper.CHUNKING) == false && existing.contains(f.path()) == false) {
                f.config().put(SesaTextFieldMapper.CHUNKING, new LinkedHashMap<>(DEFAULT_CHUNKING));
                changed = true;
            }
        }
        return changed;
    }

    /** {@code mapping} of a template with {@link #DEFAULT_CHUNKING} where a sesa_text field names none; null: unchanged. */
    private static CompressedXContent templateMapping(CompressedXContent mapping) {
        if (mapping == null) {
            return null;
        }
        Map<String, Object> parsed = new LinkedHashMap<>(parse(mapping.string()));
        if (withDefaultChunking(parsed, Set.of()) == false) {
            return null;
        }
        try {
            return new CompressedXContent(
                org.opensearch.core.common.bytes.BytesReference.bytes(JsonXContent.contentBuilder().map(parsed))
            );
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void onCreateIndex(CreateIndexRequest request) {
        Map<String, Object> mapping = parse(request.mappings());
        if (hasSesaText(mapping)) {
            Settings completed = withKnnDefaults(request.settings());
            if (completed != null) {
                request.settings(completed);
            }
            mapping = new LinkedHashMap<>(mapping);
            if (withDefaultChunking(mapping, Set.of())) {
                request.mapping(mapping);
            }
        }
    }

    static void onPutComponentTemplate(PutComponentTemplateAction.Request request) {
        ComponentTemplate t = request.componentTemplate();
        Template template = t == null ? null : t.template();
        CompressedXContent mapping = template == null ? null : templateMapping(template.mappings());
        if (mapping != null) {
            request.componentTemplate(
                new ComponentTemplate(new Template(template.settings(), mapping, template.aliases()), t.version(), t.metadata())
            );
        }
    }

    static void onPutTemplate(PutComposableIndexTemplateAction.Request request) {
        ComposableIndexTemplate t = request.indexTemplate();
        Template template = t == null ? null : t.template();
        if (template == null || template.mappings() == null) {
            return;
        }
        if (hasSesaText(parse(template.mappings().string())) == false) {
            return;
        }
        Settings settings = withKnnDefaults(template.settings());
        CompressedXContent mapping = templateMapping(template.mappings());
        if (settings == null && mapping == null) {
            return;
        }
        request.indexTemplate(
            new ComposableIndexTemplate(
                t.indexPatterns(),
                new Template(
                    settings == null ? template.settings() : settings,
                    mapping == null ? template.mappings() : mapping,
                    template.aliases()
                ),
                t.composedOf(),
                t.priority(),
                t.version(),
                t.metadata(),
                t.getDataStreamTemplate(),
                t.context()
            )
        );
    }

    void onPutMapping(PutMappingRequest request) {
        Map<String, Object> body = parse(request.source());
        if (hasSesaText(body) == false) {
            return;
        }
        ClusterState cs = state.get();
        IndexNameExpressionResolver r = resolver.get();
        if (cs == null || r == null) {
            return;
        }
        List<IndexMetadata> targets = new ArrayList<>();
        if (request.getConcreteIndex() != null) {
            IndexMetadata im = cs.metadata().index(request.getConcreteIndex());
            if (im != null) {
                targets.add(im);
            }
        } else {
            for (String name : r.concreteIndexNames(cs, request)) {
                IndexMetadata im = cs.metadata().index(name);
                if (im != null) {
                    targets.add(im);
                }
            }
        }
        List<String> fields = new ArrayList<>(MappingMaps.sesaTextFields(MappingMaps.properties(body)).keySet());
        for (IndexMetadata im : targets) {
            if (im.getSettings().getAsBoolean(KNN_SETTING, false) == false) {
                throw new IllegalArgumentException(
                    SesaTextFieldMapper.CONTENT_TYPE
                        + (fields.size() > 1 ? " fields " + fields + " need" : " field " + fields + " needs")
                        + " index.knn: true, which index ["
                        + im.getIndex().getName()
                        + "] does not have and cannot get after its creation; create a new index with the "
                        + SesaTextFieldMapper.CONTENT_TYPE
                        + " mapping (index.knn is set for you then) and reindex into it"
                );
            }
        }
        Set<String> existing = new HashSet<>(); // sesa_text fields already mapped keep what their mapping says
        for (IndexMetadata im : targets) {
            MappingMetadata mapping = im.mapping();
            if (mapping != null) {
                existing.addAll(MappingMaps.sesaTextFields(MappingMaps.properties(mapping.sourceAsMap())).keySet());
            }
        }
        body = new LinkedHashMap<>(body);
        if (withDefaultChunking(body, existing)) {
            request.source(body);
        }
        Map<String, Object> root = MappingMaps.root(body);
        if (root.containsKey(MappingMaps.META) || targets.isEmpty()) {
            return; // the request's own _meta: what the user asked for
        }
        Object meta = metaOf(targets.get(0));
        for (IndexMetadata im : targets) {
            if (Objects.equals(meta, metaOf(im)) == false) {
                throw new IllegalArgumentException(
                    "adding "
                        + SesaTextFieldMapper.CONTENT_TYPE
                        + " fields "
                        + fields
                        + " records their models in the mapping _meta, which would replace the differing _meta of indices "
                        + targets.stream().map(i -> i.getIndex().getName()).toList()
                        + "; put the mapping to one index at a time"
                );
            }
        }
        if (meta == null) {
            return;
        }
        Map<String, Object> withMeta = new LinkedHashMap<>(body);
        if (body.get(MappingMaps.DOC) instanceof Map<?, ?> && body.containsKey(MappingMaps.PROPERTIES) == false) {
            @SuppressWarnings("unchecked")
            Map<String, Object> doc = new LinkedHashMap<>((Map<String, Object>) body.get(MappingMaps.DOC));
            doc.put(MappingMaps.META, meta);
            withMeta.put(MappingMaps.DOC, doc);
        } else {
            withMeta.put(MappingMaps.META, meta);
        }
        request.source(withMeta);
    }

    private static Object metaOf(IndexMetadata im) {
        MappingMetadata mapping = im.mapping();
        return mapping == null ? null : mapping.sourceAsMap().get(MappingMaps.META);
    }
}
