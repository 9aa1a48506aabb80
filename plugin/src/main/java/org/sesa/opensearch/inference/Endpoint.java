package org.sesa.opensearch.inference;

import java.util.Locale;

/**
 * One inference server address ({@code host:port}, IPv6 as {@code [::1]:50051}).
 * Parsing is strict so that a typo fails node start-up instead of the first ingest.
 */
public record Endpoint(String host, int port) {

    public Endpoint {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("host must not be empty");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port must be between 1 and 65535, got " + port);
        }
    }

    /** Parses {@code host:port}; the message names the bad value and the expected form. */
    public static Endpoint parse(String value) {
        String v = value == null ? "" : value.trim();
        String host;
        String portText;
        if (v.startsWith("[")) {
            int close = v.indexOf(']');
            if (close < 0 || close + 1 >= v.length() || v.charAt(close + 1) != ':') {
                throw invalid(value, "IPv6 addresses must look like [::1]:50051");
            }
            host = v.substring(1, close);
            portText = v.substring(close + 2);
        } else {
            int colon = v.lastIndexOf(':');
            if (colon <= 0 || colon == v.length() - 1 || v.indexOf(':') != colon) {
                throw invalid(value, "expected host:port, e.g. 127.0.0.1:50051");
            }
            host = v.substring(0, colon);
            portText = v.substring(colon + 1);
        }
        if (host.isBlank() || host.chars().anyMatch(Character::isWhitespace) || host.contains("/")) {
            throw invalid(value, "host must be a host name or IP address without scheme or path");
        }
        int port;
        try {
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            throw invalid(value, "port [" + portText + "] is not a number");
        }
        if (port < 1 || port > 65535) {
            throw invalid(value, "port must be between 1 and 65535");
        }
        return new Endpoint(host, port);
    }

    private static IllegalArgumentException invalid(String value, String why) {
        return new IllegalArgumentException(String.format(Locale.ROOT, "invalid inference endpoint [%s]: %s", value, why));
    }

    @Override
    public String toString() {
        return host.indexOf(':') >= 0 ? "[" + host + "]:" + port : host + ":" + port;
    }
}
