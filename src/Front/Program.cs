using Bulk.Broker.Hosting;
using Bulk.Front;

return await ProcessRunner.RunAsync("Bulk.Front", () => FrontApp.Create(args));
