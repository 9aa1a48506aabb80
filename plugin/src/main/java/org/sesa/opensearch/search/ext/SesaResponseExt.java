package org.sesa.opensearch.search.ext;

import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.common.io.stream.StreamOutput;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.search.SearchExtBuilder;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The response's {@code ext.sesa}: how the search ran (mode, fusion, branch windows, rerank) and whether it
 * was {@code degraded}. Rendered as {@code "ext": {"sesa": {...}}}; its writeable name differs from the
 * request extension's ({@code sesa}) because both live in the same registry category.
 */
public final class SesaResponseExt extends SearchExtBuilder {

    public static final String NAME = "sesa_response";
    public static final String FIELD = "sesa";

    private final Map<String, Object> info;

    public SesaResponseExt(Map<String, Object> info) {
        this.info = Collections.unmodifiableMap(new LinkedHashMap<>(info));
    }

    public SesaResponseExt(StreamInput in) throws IOException {
        this(in.readMap());
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
        out.writeMap(info);
    }

    @Override
    public String getWriteableName() {
        return NAME;
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        return builder.field(FIELD, info);
    }

    public Map<String, Object> info() {
        return info;
    }

    /** The SESA extension of a response's ext list, or null. */
    public static SesaResponseExt find(List<SearchExtBuilder> exts) {
        if (exts == null) {
            return null;
        }
        for (SearchExtBuilder b : exts) {
            if (b instanceof SesaResponseExt s) {
                return s;
            }
        }
        return null;
    }

    /** {@code exts} with any SESA response extension replaced by {@code ext}. */
    public static List<SearchExtBuilder> replace(List<SearchExtBuilder> exts, SesaResponseExt ext) {
        List<SearchExtBuilder> out = new ArrayList<>();
        if (exts != null) {
            for (SearchExtBuilder b : exts) {
                if (b instanceof SesaResponseExt == false) {
                    out.add(b);
                }
            }
        }
        out.add(ext);
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SesaResponseExt that && info.equals(that.info);
    }

    @Override
    public int hashCode() {
        return Objects.hash(info);
    }
}
