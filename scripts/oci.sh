#!/usr/bin/env bash
# Writes the two images of docs/deployment.md as OCI image layouts, without a
# container daemon or network: only sha256sum, tar, gzip and stat.
#
#   target/oci/filter         the filter as a Wasm OCI image Istio pulls (oci://…):
#                             the "compat" variant, one tar+gzip layer holding
#                             plugin.wasm, which Istio, Envoy Gateway and
#                             crun/CRI-O all read
#   target/oci/control-plane  the control plane: one static binary, /kalguard,
#                             run as uid 65532, nothing else in the image
#
# Both are tagged with the workspace version. Layers are reproducible (sorted,
# mtime 0, owner root, gzip without a name or time), so the same inputs
# give the same digests. Prints each image's manifest digest and the SHA-256
# of kalguard_filter.wasm (the WasmPlugin's `sha256`).
#
# Then checks them: the filter's layer holds exactly the .wasm, and the
# images inspect cleanly with skopeo (Debian's `skopeo`; skipped, saying so,
# where it is not installed).
#
# Usage: scripts/oci.sh <filter.wasm> <static kalguard binary> <version>
set -euo pipefail

wasm=$1
binary=$2
version=$3
out=target/oci
created=1970-01-01T00:00:00Z

# An image with nothing but the binary needs a binary that needs nothing.
if ! ldd "$binary" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "oci: $binary is dynamically linked; the image holds no libraries" >&2
    exit 1
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# Moves a file into the layout's blobs under its digest; prints the digest.
blob() {
    local layout=$1 file=$2 digest
    digest=$(sha "$file")
    mv "$file" "$layout/blobs/sha256/$digest"
    echo "$digest"
}

# A reproducible tar+gzip layer holding the one file $2 at the image's root,
# owned by root (the control plane's user cannot rewrite its own binary).
layer() {
    local layout=$1 file=$2 tar
    tar=$(mktemp -p "$layout")
    tar --create --file "$tar" --directory "$(dirname "$file")" --sort=name --mtime=@0 \
        --owner=0 --group=0 --numeric-owner --format=posix \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "$(basename "$file")"
    diff_id=$(sha "$tar")
    gzip -n -9 "$tar"
    layer_size=$(size "$tar.gz")
    layer_digest=$(blob "$layout" "$tar.gz")
}

# One image: its name, its one file, the image config's JSON (without rootfs),
# the manifest's annotations JSON.
image() {
    local name=$1 file=$2 config_body=$3 annotations=$4
    local layout=$out/$name config manifest config_digest manifest_digest
    rm -rf "$layout"
    mkdir -p "$layout/blobs/sha256"
    layer "$layout" "$file"
    config=$(mktemp -p "$layout")
    printf '{%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$config_body" "$diff_id" > "$config"
    local config_size
    config_size=$(size "$config")
    config_digest=$(blob "$layout" "$config")
    manifest=$(mktemp -p "$layout")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}],'\
'"annotations":%s}' \
        "$config_digest" "$config_size" "$layer_digest" "$layer_size" "$annotations" > "$manifest"
    local manifest_size
    manifest_size=$(size "$manifest")
    manifest_digest=$(blob "$layout" "$manifest")
    printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'\
'"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,'\
'"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest_digest" "$manifest_size" "$version" > "$layout/index.json"
    echo "$layout:$version  sha256:$manifest_digest"
}

source_annotations='"org.opencontainers.image.source":"https://github.com/kalguard/kalguard","org.opencontainers.image.licenses":"Apache-2.0"'

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

# The filter: /plugin.wasm, the name Istio's image fetcher looks for.
mkdir -p "$staging/filter"
cp "$wasm" "$staging/filter/plugin.wasm"
chmod 0644 "$staging/filter/plugin.wasm"
image filter "$staging/filter/plugin.wasm" \
    '"created":"'$created'","architecture":"amd64","os":"linux","config":{}' \
    '{'"$source_annotations"',"org.opencontainers.image.version":"'"$version"'","org.opencontainers.image.title":"kalguard-filter","module.wasm.image/variant":"compat"}'

# The control plane: /kalguard alone, run as 65532, `serve` by default. Its
# data directory is a volume (docs/deployment.md): the image has no other path.
mkdir -p "$staging/control-plane"
cp "$binary" "$staging/control-plane/kalguard"
chmod 0755 "$staging/control-plane/kalguard"
image control-plane "$staging/control-plane/kalguard" \
    '"created":"'$created'","architecture":"amd64","os":"linux","config":{"User":"65532:65532","Entrypoint":["/kalguard"],"Cmd":["serve"],"Env":["KALGUARD_DATA_DIR=/var/lib/kalguard"]}' \
    '{'"$source_annotations"',"org.opencontainers.image.version":"'"$version"'","org.opencontainers.image.title":"kalguard-control-plane"}'

echo "kalguard_filter.wasm sha256: $(sha "$wasm")   (the WasmPlugin's sha256)"

# The filter's one layer is plugin.wasm, byte for byte.
filter_layer=$(sed -n 's/.*"layers":\[{[^}]*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' \
    "$out/filter/blobs/sha256/$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$out/filter/index.json")")
[[ $(tar -xzOf "$out/filter/blobs/sha256/$filter_layer" plugin.wasm | sha256sum | cut -d' ' -f1) == "$(sha "$wasm")" ]] ||
    { echo "oci: the filter image's layer does not hold $wasm" >&2; exit 1; }
if command -v skopeo >/dev/null; then
    for name in filter control-plane; do
        skopeo inspect "oci:$out/$name:$version" >/dev/null
    done
    echo "skopeo inspect: both images read cleanly"
else
    echo "skopeo not installed: the layouts were not inspected (apt-get install skopeo)"
fi
