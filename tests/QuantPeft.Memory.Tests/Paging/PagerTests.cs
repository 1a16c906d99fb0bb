using TorchSharp;
using QuantPeft.Memory.Paging;
using static TorchSharp.torch;

namespace QuantPeft.Memory.Tests.Paging;

public class PagerTests
{
    private static Pager NewPager(long budget, PageBacking backing = PageBacking.MappedFile) =>
        new(new PagerOptions(budget, CPU, backing));

    [Theory]
    [InlineData(PageBacking.MappedFile)]
    [InlineData(PageBacking.Host)]
    public void WritesSurviveEvictionAndReload_BitForBit(PageBacking backing)
    {
        // Budget of one 4 KiB page: touching b evicts a, touching a again must bring back what was written.
        using var pager = NewPager(4096, backing);
        var a = pager.Allocate("a", [1024], ScalarType.Float32);
        var b = pager.Allocate("b", [1024], ScalarType.Float32);
        var data = randn([1024], generator: new Generator(1));
        using (pager.Acquire([a])) a.Resident.copy_(data);
        using (pager.Acquire([b])) b.Resident.fill_(3f);
        Assert.False(a.IsResident);
        using (pager.Acquire([a])) Assert.True(a.Resident.eq(data).all().item<bool>());
        using (pager.Acquire([b])) Assert.Equal(3f, b.Resident.min().item<float>());
        Assert.True(pager.Evictions >= 3);
    }

    [Fact]
    public void NewPages_AreZero()
    {
        using var pager = NewPager(1 << 20);
        var p = pager.Allocate("p", [10, 10], ScalarType.BFloat16);
        using (pager.Acquire([p])) Assert.Equal(0f, p.Resident.abs().max().to(ScalarType.Float32).item<float>());
    }

    [Fact]
    public void EvictsLeastRecentlyUsed()
    {
        // Room for two 400-byte pages. Use a, b, then a again: loading c must evict b (older), not a.
        using var pager = NewPager(800);
        var a = pager.Allocate("a", [100], ScalarType.Float32);
        var b = pager.Allocate("b", [100], ScalarType.Float32);
        var c = pager.Allocate("c", [100], ScalarType.Float32);
        using (pager.Acquire([a])) { }
        using (pager.Acquire([b])) { }
        using (pager.Acquire([a])) { }
        using (pager.Acquire([c])) { }
        Assert.True(a.IsResident);
        Assert.False(b.IsResident);
        Assert.True(c.IsResident);
    }

    // The CPU backings always; pinned host pages on a CUDA device where the test suite runs on a GPU (a CUDA run's paged
    // optimizer states, see FinetuneRecipe).
    public static TheoryData<string, PageBacking> Placements()
    {
        var data = new TheoryData<string, PageBacking> { { "cpu", PageBacking.MappedFile }, { "cpu", PageBacking.Host } };
        if (cuda.is_available()) data.Add("cuda:0", PageBacking.PinnedHost);
        return data;
    }

    [Theory]
    [MemberData(nameof(Placements))]
    public void ResidentBytes_NeverExceedBudget_WithPrefetch(string device, PageBacking backing)
    {
        // Six 3 KiB pages, budget 7 KiB (two pages): walk them in order with prefetch of the next one.
        using var pager = new Pager(new PagerOptions(7 * 1024, torch.device(device), backing));
        var pages = Enumerable.Range(0, 6).Select(i => pager.Allocate($"p{i}", [768], ScalarType.Float32)).ToList();
        for (int round = 0; round < 3; round++)
            for (int i = 0; i < pages.Count; i++)
            {
                using var lease = pager.Acquire([pages[i]]);
                pager.Prefetch([pages[(i + 1) % pages.Count]]);
                pages[i].Resident.add_(1f);
                Assert.True(pager.ResidentBytes <= pager.Options.BudgetBytes);
            }
        pager.EvictAll();
        Assert.True(pager.PeakResidentBytes <= pager.Options.BudgetBytes);
        foreach (var p in pages)
            using (pager.Acquire([p])) Assert.Equal(3f, p.Resident.min().item<float>());
    }

    [Fact]
    public void PagesLargerThanBudget_AreRejectedWithTheirSizes()
    {
        using var pager = NewPager(1000);
        var p = pager.Allocate("big.exp_avg", [1000], ScalarType.Float32);
        var e = Assert.Throws<PagerBudgetException>(() => pager.Acquire([p]));
        Assert.Contains("big.exp_avg", e.Message);
        Assert.Contains("4000", e.Message);
        Assert.Contains("1000", e.Message);
    }

    [Fact]
    public void UsingAPageWithoutAcquiring_Throws()
    {
        using var pager = NewPager(1 << 20);
        var p = pager.Allocate("p", [4], ScalarType.Float32);
        Assert.Throws<InvalidOperationException>(() => p.Resident);
    }

    [Fact]
    public void Dispose_DeletesThePageFiles()
    {
        string dir = Path.Combine(Path.GetTempPath(), "qpeft-pager-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using (var pager = new Pager(new PagerOptions(1 << 20, CPU, PageBacking.MappedFile, dir)))
            {
                pager.Allocate("p", [1024], ScalarType.Float32);
                Assert.Single(Directory.GetFiles(dir));
                Assert.Equal(4096, pager.BackingBytes);
            }
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void PinnedBacking_WithoutCuda_IsRejected()
    {
        if (cuda.is_available()) return; // the rule only concerns CPU-only builds
        Assert.Throws<ArgumentException>(() => NewPager(100, PageBacking.PinnedHost));
    }
}
