using QuantPeft.Memory.Probes;
using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.State;

/// <summary>Tests that read the process's C heap run alone: an allocation on another test's thread between two
/// reads would be counted against the code under test.</summary>
[CollectionDefinition(nameof(NativeHeapReaders), DisableParallelization = true)]
public sealed class NativeHeapReaders;

/// <summary>
/// The rules free a decoded moment early (AdamW drops v once the direction is formed): the decoded tensor must be the
/// only handle on its storage, or its 4 bytes per element stay alive to the end of the update.
/// </summary>
[Collection(nameof(NativeHeapReaders))]
public sealed class DecodedMomentReleaseTests
{
    [Fact]
    public void DisposingTheDecodedMomentFreesItsStorage()
    {
        // Live bytes (arena in-use plus mapped) rather than mapped bytes alone: 32 MiB is at glibc's largest mmap
        // threshold, and a large free chunk an earlier test left in an arena can serve it instead of a new mapping.
        if (!OperatingSystem.IsLinux() || NativeHeap.Read() is null) return;
        long n = 8L << 20;
        using var alloc = new DeviceStateAllocator();
        var state = new Blockwise8BitStateCodec().Create("v", [n / 1024, 1024], signed: false, CPU, alloc);
        using (var outer = NewDisposeScope())
        {
            var decoded = state.Decode();
            long withDecoded = NativeHeap.Read()!.Value.LiveBytes;
            decoded.Dispose();
            long afterDispose = NativeHeap.Read()!.Value.LiveBytes;
            Assert.True(withDecoded - afterDispose >= 4 * n,
                $"disposing the decoded moment freed {withDecoded - afterDispose:N0} bytes; its storage is {4 * n:N0}");
        }
    }
}
