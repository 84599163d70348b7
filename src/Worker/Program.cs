using Bulk.Contracts;
using Bulk.Worker;

return await ProcessRunner.RunAsync("Bulk.Worker", () => WorkerHost.Create(args));
