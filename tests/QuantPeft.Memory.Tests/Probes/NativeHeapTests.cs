using System.Runtime.InteropServices;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Memory.Tests.Probes;

/// <summary>
/// The pinned C-heap thresholds, checked on glibc (where CI runs) against what glibc itself records: the
/// IS_MMAPPED bit (0x2) of a block's chunk header, the size word just before the pointer, says whether the block
/// has its own mapping. Under glibc's default dynamic threshold, freeing a 30 MiB mapped block raises the threshold
/// to 30 MiB and a later mid-size block comes from an arena; pinned, it must still be mapped.
/// </summary>
[Collection(nameof(ProcessMemoryCollection))]
public sealed class NativeHeapTests
{
    private static bool Glibc => OperatingSystem.IsLinux() && NativeHeap.Read() is not null;

    [Fact]
    public unsafe void AfterAFreedLargeBlockAMidSizeBlockIsStillMapped()
    {
        if (!Glibc) return;
        Assert.True(NativeHeap.Configure());
        Assert.True(NativeHeap.IsConfigured);
        void* big = NativeMemory.Alloc(30u << 20);
        Assert.True(IsMapped(big));
        NativeMemory.Free(big); // would raise glibc's dynamic threshold to 30 MiB

        // malloc serves a request from any free arena chunk that fits before it considers a mapping, whatever the
        // threshold, and earlier tests leave free chunks behind: the probe block is larger than all of them together,
        // and still well under the 30 MiB a dynamic threshold would now send to an arena.
        long free = NativeHeap.Read()!.Value.FreeBytes;
        long size = Math.Max(1L << 20, free + (64 << 10));
        Assert.True(size <= 24L << 20, $"the arenas hold {free:N0} free bytes; the probe block must stay under 24 MiB");
        void* probe = NativeMemory.Alloc((nuint)size);
        void* small = NativeMemory.Alloc(16u << 10);
        try
        {
            Assert.True(IsMapped(probe), $"a {size:N0}-byte block came from an arena");
            Assert.False(IsMapped(small)); // below 128 KiB blocks still come from the arenas
        }
        finally
        {
            NativeMemory.Free(probe);
            NativeMemory.Free(small);
        }
    }

    [Fact]
    public unsafe void TrimIfRetainedAboveReturnsFreedArenaPagesOnlyPastItsBound()
    {
        if (!Glibc || !ProcessMemoryProbe.IsSupported) return;
        NativeHeap.RecordResidentBaseline();
        // 3,000 blocks of 64 KiB (arena blocks under any mmap threshold), touched, then freed below a block kept at the
        // top, so glibc's own top trimming cannot return them: ≈ 187 MiB of freed, resident arena pages.
        const int count = 3000, size = 64 << 10;
        var blocks = new byte*[count];
        for (int i = 0; i < count; i++)
        {
            blocks[i] = (byte*)NativeMemory.Alloc(size);
            for (int j = 0; j < size; j += 4096) blocks[i][j] = 1;
        }
        void* top = NativeMemory.Alloc(size);
        try
        {
            for (int i = 0; i < count; i++) NativeMemory.Free(blocks[i]);
            Assert.False(NativeHeap.TrimIfRetainedAbove(1L << 40), "nothing near a terabyte is retained");
            long before = ProcessMemoryProbe.Read().CurrentBytes;
            Assert.True(NativeHeap.TrimIfRetainedAbove(64L << 20), "≈ 187 MiB of freed pages are above a 64 MiB bound");
            long after = ProcessMemoryProbe.Read().CurrentBytes;
            Assert.True(before - after >= 100L << 20, $"the trim returned {(before - after) >> 20} MiB of ≈ 187 MiB freed");
        }
        finally
        {
            NativeMemory.Free(top);
            NativeHeap.Trim();
        }
    }

    // Freed pages the resident set has not grown past are left for the next allocations to reuse; once the resident
    // set grows past the last check by a quarter of the bound, the check runs and trims.
    [Fact]
    public unsafe void FreedPagesAreTrimmedOnlyOnceTheResidentSetGrowsPastTheLastCheck()
    {
        if (!Glibc || !ProcessMemoryProbe.IsSupported) return;
        const int count = 3000, size = 64 << 10;   // ≈ 187 MiB of 64 KiB arena blocks, touched
        const long bound = 64L << 20;
        byte*[] Allocate()
        {
            var blocks = new byte*[count];
            for (int i = 0; i < count; i++)
            {
                blocks[i] = (byte*)NativeMemory.Alloc(size);
                for (int j = 0; j < size; j += 4096) blocks[i][j] = 1;
            }
            return blocks;
        }
        static void Free(byte*[] blocks)
        {
            foreach (byte* b in blocks) NativeMemory.Free(b);
        }
        NativeHeap.RecordResidentBaseline();
        byte*[] first = Allocate();
        void* top = NativeMemory.Alloc(size);   // above the blocks, so glibc's own top trimming cannot return them
        try
        {
            Assert.False(NativeHeap.TrimIfRetainedAbove(bound), "everything allocated is live: a check, and nothing to trim");
            Free(first);
            long before = ProcessMemoryProbe.Read().CurrentBytes;
            Assert.False(NativeHeap.TrimIfRetainedAbove(bound), "≈ 187 MiB freed, but the resident set has not grown since the check");
            Assert.True(before - ProcessMemoryProbe.Read().CurrentBytes < 64L << 20, "nothing was returned");
            byte*[] second = Allocate();   // served from the freed pages: the resident set stays where it was
            Assert.False(NativeHeap.TrimIfRetainedAbove(bound));
            byte*[] third = Allocate();    // new pages above them: ≈ 187 MiB of growth past the last check
            try
            {
                Free(second);              // ≈ 187 MiB freed below the live third set
                before = ProcessMemoryProbe.Read().CurrentBytes;
                Assert.True(NativeHeap.TrimIfRetainedAbove(bound), "≈ 187 MiB freed after the resident set grew ≈ 187 MiB past the check");
                Assert.True(before - ProcessMemoryProbe.Read().CurrentBytes >= 100L << 20, "the trim returned the freed pages");
            }
            finally
            {
                Free(third);
            }
        }
        finally
        {
            NativeMemory.Free(top);
            NativeHeap.Trim();
        }
    }

    [Fact]
    public unsafe void FreedMidSizeBlocksLeaveTheResidentSet()
    {
        if (!Glibc || !ProcessMemoryProbe.IsSupported) return;
        Assert.True(NativeHeap.Configure());
        NativeMemory.Free(NativeMemory.Alloc(24u << 20));
        const int count = 8;
        const int size = 4 << 20; // 32 MiB in all: below glibc's raised trim threshold, so unpinned it would stay resident
        // malloc serves a request from a free arena chunk that fits before it considers a mapping, whatever the
        // threshold, and earlier tests leave such chunks behind (other threads' blocks keep them from merging): take
        // them, untouched, until a block of this size comes back as its own mapping.
        var fillers = new List<nint>();
        for (void* p = NativeMemory.Alloc((nuint)size); ; p = NativeMemory.Alloc((nuint)size))
        {
            if (IsMapped(p) || fillers.Count == 4096)
            {
                NativeMemory.Free(p);
                break;
            }
            fillers.Add((nint)p);
        }
        try
        {
            FreeMappedBlocks(size, count);
        }
        finally
        {
            foreach (nint p in fillers) NativeMemory.Free((void*)p);
        }
    }

    private static unsafe void FreeMappedBlocks(int size, int count)
    {
        var blocks = new byte*[count];
        for (int i = 0; i < count; i++)
        {
            blocks[i] = (byte*)NativeMemory.Alloc((nuint)size);
            for (int j = 0; j < size; j += 4096) blocks[i][j] = (byte)(i + 1);
        }
        long touched = ProcessMemoryProbe.Read().CurrentBytes;
        for (int i = 0; i < count; i++)
        {
            Assert.Equal((byte)(i + 1), blocks[i][size - 4096]); // harmless: each block kept its own contents
            NativeMemory.Free(blocks[i]);
        }
        long freed = touched - ProcessMemoryProbe.Read().CurrentBytes;
        Assert.True(freed >= 24L << 20, $"freeing 32 MiB of 4 MiB blocks lowered the resident set by only {freed >> 20} MiB");
    }

    [Fact]
    public unsafe void ReadAccountsArenaAsInUsePlusFreeAndSeesALiveMappedBlock()
    {
        if (!Glibc) return;
        Assert.True(NativeHeap.Configure());
        // Above any free chunk the arenas may hold from earlier tests (malloc serves a request from a free arena chunk
        // that fits before it considers a mapping, whatever the threshold), so this block is always its own mapping.
        void* block = NativeMemory.Alloc(512u << 20);
        try
        {
            NativeHeapStats s = NativeHeap.Read()!.Value;
            Assert.Equal(s.ArenaBytes, s.InUseBytes + s.FreeBytes); // glibc computes uordblks as arena − fordblks
            Assert.True(s.MappedBytes >= 512L << 20, $"mapped {s.MappedBytes} bytes with a 512 MiB block alive");
            Assert.Equal(s.InUseBytes + s.MappedBytes, s.LiveBytes);
        }
        finally { NativeMemory.Free(block); }
    }

    [Fact]
    public void NonPositiveThresholdsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeHeap.Configure(mmapThreshold: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeHeap.Configure(trimThreshold: -1));
    }

    // glibc keeps a chunk's size word right before the user pointer; bit 1 marks a chunk with its own mapping.
    private static unsafe bool IsMapped(void* p) => (((nuint*)p)[-1] & 2) != 0;
}
