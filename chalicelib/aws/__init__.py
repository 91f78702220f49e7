"""The AWS adapters: the DynamoDB table's models and transactions, S3 storage and presigned posts,
EventBridge, Secrets Manager, and the one botocore session they share. The domain modules in
`chalicelib/` call these; nothing here knows about routes, handlers or the domain's rules."""
