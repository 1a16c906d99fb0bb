#!/usr/bin/env bash
# Builds perf/gpu/pack/ (ignored by git) for run-gpu-check.sh on a CUDA Linux machine that has Python + torch but no
# .NET and no internet:
#   pack/qpeft.tar.gz            self-contained linux-x64 qpeft WITHOUT libtorch (the CPU natives are > 450 MB and would
#                                shadow the GPU's libtorch) and without TorchSharp's libLibTorchSharp.so (built there
#                                against that machine's torch)
#   pack/torchsharp-native.tar.gz  TorchSharp's src/Native at the release of the TorchSharp package in use
#   pack/MANIFEST                what went in, with sizes and the TorchSharp commit
# Usage: perf/gpu/pack.sh [TORCHSHARP_GIT_DIR [COMMIT]]
#   TORCHSHARP_GIT_DIR  a clone (or bare mirror) of github.com/dotnet/TorchSharp; default $TORCHSHARP_GIT
#   COMMIT              default v0.107.0 if that tag exists, else the commit whose build/BranchInfo.props says 0.107.0
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pack="$here/pack"
git_dir="${1:-${TORCHSHARP_GIT:-}}"
[[ -n "$git_dir" ]] || { echo "error: TorchSharp git directory: give it as the first argument or TORCHSHARP_GIT" >&2; exit 1; }
version="$(sed -n 's/.*Include="TorchSharp" Version="\([^"]*\)".*/\1/p' "$root/Directory.Packages.props")"
[[ -n "$version" ]] || { echo "error: Directory.Packages.props: no TorchSharp version" >&2; exit 1; }
commit="${2:-}"
if [[ -z "$commit" ]]; then
  if git --git-dir="$git_dir" rev-parse -q --verify "v$version^{commit}" >/dev/null; then
    commit="v$version"
  else
    # The release commit: the newest one whose BranchInfo.props carries this version and whose release notes open with it.
    IFS=. read -r major minor patch <<<"$version"
    for c in $(git --git-dir="$git_dir" rev-list HEAD -- build/BranchInfo.props RELEASENOTES.md | head -50); do
      props="$(git --git-dir="$git_dir" show "$c:build/BranchInfo.props")"
      notes="$(git --git-dir="$git_dir" show "$c:RELEASENOTES.md" | grep -m1 '^# NuGet Version' || true)"
      if grep -q "<MinorVersion>$minor</MinorVersion>" <<<"$props" && grep -q "<PatchVersion>$patch</PatchVersion>" <<<"$props" \
         && [[ "$notes" == "# NuGet Version $version" ]]; then commit="$c"; break; fi
    done
    [[ -n "$commit" ]] || { echo "error: $git_dir: no tag v$version and no commit releasing $version" >&2; exit 1; }
  fi
fi
rm -rf "$pack"
mkdir -p "$pack/publish"
echo "publishing qpeft (self-contained linux-x64) ..."
dotnet publish "$root/cli/qpeft.csproj" -c Release -r linux-x64 --self-contained true -o "$pack/publish" -v quiet -nologo
# Leave out libtorch (every library of the libtorch-cpu package) and TorchSharp's native glue: the GPU machine supplies
# torch and compiles the glue against it. The managed TorchSharp.dll stays.
libtorch_files="$(ls "$HOME/.nuget/packages/libtorch-cpu-linux-x64/"*/runtimes/linux-x64/native/ | sort -u)"
for f in $libtorch_files libLibTorchSharp.so; do rm -f "$pack/publish/$f"; done
left="$(find "$pack/publish" -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libLibTorchSharp.so' | head -1)"
[[ -z "$left" ]] || { echo "error: $left is still in the publish folder" >&2; exit 1; }
tar -C "$pack/publish" -czf "$pack/qpeft.tar.gz" .
rm -rf "$pack/publish"
git --git-dir="$git_dir" archive --format=tar.gz -o "$pack/torchsharp-native.tar.gz" "$commit" src/Native
{
  echo "torchsharp_version=$version"
  echo "torchsharp_commit=$(git --git-dir="$git_dir" rev-parse "$commit^{commit}")"
  echo "qpeft_commit=$(git -C "$root" rev-parse HEAD)"
  echo "packed_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  (cd "$pack" && du -b qpeft.tar.gz torchsharp-native.tar.gz)
} > "$pack/MANIFEST"
total="$(du -cb "$pack" | tail -1 | cut -f1)"
echo "pack: $total bytes"; cat "$pack/MANIFEST"
limit=$((64 * 1024 * 1024))
tracked="$(git -C "$root" ls-files -z | (cd "$root" && xargs -0 du -cb) | tail -1 | cut -f1)"
echo "tracked files: $tracked bytes; pack + tracked: $((total + tracked)) of $limit"
(( total + tracked <= limit )) || { echo "error: pack + tracked files exceed 64 MiB" >&2; exit 1; }
