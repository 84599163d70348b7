using Bulk.Broker.Hosting;
using Bulk.Worker;

return await ProcessRunner.RunAsync("Bulk.Worker", () => WorkerHost.Create(args));
