using BenchmarkDotNet.Running;

namespace QuantPeft.Perf;

/// <summary>Runs the BenchmarkDotNet suites: <c>dotnet run -c Release --project perf -- --filter '*Name*'</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
