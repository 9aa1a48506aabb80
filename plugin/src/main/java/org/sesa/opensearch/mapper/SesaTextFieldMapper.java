package org.sesa.opensearch.mapper;

import org.sesa.inference.v1.Chunking;
import org.sesa.opensearch.util.ChunkingOption;
import org.sesa.opensearch.util.SesaConventions;
import org.apache.lucene.document.FieldType;
import org.opensearch.Version;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.index.analysis.IndexAnalyzers;
import org.opensearch.index.mapper.Mapper;
import org.opensearch.index.mapper.MapperParsingException;
import org.opensearch.index.mapper.ParametrizedFieldMapper;
import org.opensearch.index.mapper.TextFieldMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code sesa_text}: a text field (searchable with BM25 like {@code text}, {@code english} analyzer by default) whose
 * documents get SESA vectors without any pipeline. Mapping {@code {"body": {"type": "sesa_text"}}}:
 *
 * <ul>
 *   <li>{@link SesaTextMappingTransformer} adds its sibling fields for target prefix {@code body_sesa}
 *       ({@code body_sesa_dense}, {@code body_sesa_concepts}, ...), with the dimension the inference server reports, and
 *       records the server's models in {@code _meta.sesa.models.body_sesa}, when the mapping is created;</li>
 *   <li>the {@code sesa_text} system ingest processor ({@code SesaTextIngestProcessorFactory}) encodes every document
 *       of the index into them, for plain {@code _bulk} and {@code PUT _doc} requests too;</li>
 *   <li>{@code ext.sesa.field: "body"} makes {@code sesa_query} search {@code body} and its {@code body_sesa_*}
 *       fields.</li>
 * </ul>
 *
 * Parameters: those of {@code text}, plus {@code concept_space} (the server's concept space to map the text into;
 * default: the server's default space; it cannot change once set, as vectors of two spaces cannot be compared) and
 * {@code chunking} ({@code sesa_encode}'s option of that name, {@link ChunkingOption}: every window of a long text is
 * encoded and stored in {@code <field>_sesa_chunks}, and the search scores the document by its best window; absent:
 * off; it cannot change once set). A {@code sesa_text} field cannot be a multi-field.
 *
 * <p>The mapper is a {@link TextFieldMapper} (its field type is the text field type, so every text query, highlighter
 * and analyzer works on it unchanged); only its type name and the extra parameter differ.
 */
public final class SesaTextFieldMapper extends TextFieldMapper {

    public static final String CONTENT_TYPE = "sesa_text";
    public static final String CONCEPT_SPACE = "concept_space";
    public static final String CHUNKING = ChunkingOption.CHUNKING;
    public static final String ANALYZER = "analyzer";
    public static final String DEFAULT_ANALYZER = "english";
    /** A sesa_text field {@code body} writes its SESA output under target prefix {@code body_sesa} (conventions.json). */
    public static final String TARGET_PREFIX_SUFFIX = SesaConventions.get().sesaTextTargetSuffix();
    /** What a concept space name may look like (what the server's names look like, with room to spare). */
    private static final Pattern CONCEPT_SPACE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}");

    private final String conceptSpace;
    private final Map<String, Object> chunking;

    private SesaTextFieldMapper(
        String simpleName,
        FieldType fieldType,
        TextFieldType mappedFieldType,
        PrefixFieldMapper prefixFieldMapper,
        PhraseFieldMapper phraseFieldMapper,
        MultiFields multiFields,
        CopyTo copyTo,
        Builder builder
    ) {
        super(simpleName, fieldType, mappedFieldType, prefixFieldMapper, phraseFieldMapper, multiFields, copyTo, builder);
        this.conceptSpace = builder.conceptSpace.getValue();
        this.chunking = builder.chunking.getValue();
    }

    /** The target prefix of the sesa_text field at {@code fieldPath}: {@code body} → {@code body_sesa}. */
    public static String targetPrefix(String fieldPath) {
        return fieldPath + TARGET_PREFIX_SUFFIX;
    }

    /** The concept space the field's text is mapped into; empty: the server's default space. */
    public String conceptSpace() {
        return conceptSpace;
    }

    /** The field's {@code chunking} option, or null when its text is encoded whole (the default). */
    public Chunking chunking() {
        return chunking.isEmpty() ? null : parseChunking(name(), chunking);
    }

    @Override
    protected String contentType() {
        return CONTENT_TYPE;
    }

    @Override
    public ParametrizedFieldMapper.Builder getMergeBuilder() {
        return new Builder(simpleName(), indexCreatedVersion, indexAnalyzers).init(this);
    }

    /** The text field writes its own parameters one by one; {@code concept_space} and {@code chunking} follow them. */
    @Override
    protected void doXContentBody(XContentBuilder builder, boolean includeDefaults, Params params) throws IOException {
        super.doXContentBody(builder, includeDefaults, params);
        Builder b = (Builder) getMergeBuilder();
        b.conceptSpace.toXContent(builder, includeDefaults);
        b.chunking.toXContent(builder, includeDefaults);
    }

    /**
     * Checks a {@code chunking} value with the rules of {@code sesa_encode}'s option of that name.
     *
     * @throws MapperParsingException naming the field and what is wrong
     */
    public static Chunking parseChunking(String field, Object value) {
        return ChunkingOption.parse(
            value,
            (property, message) -> new MapperParsingException("[" + property + "] of " + CONTENT_TYPE + " field [" + field + "] " + message)
        );
    }

    /**
     * Checks a {@code concept_space} value: a non-blank name without whitespace.
     *
     * @throws MapperParsingException naming the field and what the value must be
     */
    public static String parseConceptSpace(String field, Object value) {
        if (value instanceof String s && CONCEPT_SPACE_NAME.matcher(s).matches()) {
            return s;
        }
        throw new MapperParsingException(
            "["
                + CONCEPT_SPACE
                + "] of "
                + CONTENT_TYPE
                + " field ["
                + field
                + "] must be the name of one of the inference server's concept spaces (letters, digits and _.:@/-, as "
                + "GET _plugins/sesa/info lists them), or be left out for the server's default space; got "
                + (value == null ? "null" : value instanceof String ? "[" + value + "]" : value.getClass().getSimpleName() + " [" + value + "]")
        );
    }

    /** The builder: a text field's, plus {@code concept_space}. */
    public static final class Builder extends TextFieldMapper.Builder {

        final Parameter<String> conceptSpace = new Parameter<>(
            CONCEPT_SPACE,
            false,
            () -> "",
            (field, context, value) -> parseConceptSpace(field, value),
            m -> ((SesaTextFieldMapper) m).conceptSpace
        );

        /* Stored with every key set (ChunkingOption.toMap), so a mapping reads back the same; empty: off. */
        final Parameter<Map<String, Object>> chunking = new Parameter<>(
            CHUNKING,
            false,
            Map::of,
            (field, context, value) -> ChunkingOption.toMap(parseChunking(field, value)),
            m -> ((SesaTextFieldMapper) m).chunking
        );

        /* What the text field's build makes, kept to build this mapper from the same parts. */
        private FieldType builtFieldType;
        private TextFieldType builtFieldTypeMapped;
        private PrefixFieldMapper builtPrefix;
        private PhraseFieldMapper builtPhrase;

        public Builder(String name, Version indexCreatedVersion, IndexAnalyzers indexAnalyzers) {
            super(name, indexCreatedVersion, indexAnalyzers);
        }

        @Override
        protected List<Parameter<?>> getParameters() {
            List<Parameter<?>> all = new ArrayList<>(super.getParameters());
            all.add(conceptSpace);
            all.add(chunking);
            return all;
        }

        @Override
        protected TextFieldType buildFieldType(FieldType fieldType, BuilderContext context) {
            TextFieldType ft = super.buildFieldType(fieldType, context);
            builtFieldType = fieldType;
            builtFieldTypeMapped = ft;
            return ft;
        }

        @Override
        protected PrefixFieldMapper buildPrefixMapper(BuilderContext context, FieldType fieldType, TextFieldType tft) {
            builtPrefix = super.buildPrefixMapper(context, fieldType, tft);
            return builtPrefix;
        }

        @Override
        protected PhraseFieldMapper buildPhraseMapper(FieldType fieldType, TextFieldType parent) {
            builtPhrase = super.buildPhraseMapper(fieldType, parent);
            return builtPhrase;
        }

        @Override
        public SesaTextFieldMapper build(BuilderContext context) {
            // The text field's build makes (and hands to the hooks above) the Lucene field type, the mapped field type
            // and the prefix and phrase sub-mappers; this mapper is made of the same parts.
            TextFieldMapper text = super.build(context);
            return new SesaTextFieldMapper(
                name,
                builtFieldType,
                builtFieldTypeMapped,
                builtPrefix,
                builtPhrase,
                text.multiFields(),
                text.copyTo(),
                this
            );
        }

        /** The field's concept space as parsed; empty: the server's default. */
        public String conceptSpace() {
            return conceptSpace.getValue();
        }
    }

    /** Parses {@code {"type": "sesa_text", ...}}: the text parameters with {@code english} as the default analyzer. */
    public static final class TypeParser implements Mapper.TypeParser {

        @Override
        public Builder parse(String name, Map<String, Object> node, ParserContext parserContext) throws MapperParsingException {
            if (parserContext.isWithinMultiField()) {
                throw new MapperParsingException(
                    CONTENT_TYPE + " field [" + name + "] cannot be a multi-field (under [fields]): map it as a field of its own"
                );
            }
            if (node.containsKey(ANALYZER) == false) {
                node.put(ANALYZER, DEFAULT_ANALYZER);
            }
            Builder builder = new Builder(name, parserContext.indexVersionCreated(), parserContext.getIndexAnalyzers());
            builder.parse(name, parserContext, node);
            return builder;
        }
    }
}
