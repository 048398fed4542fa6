// Package meta is the state machine logic of the meta shard (Raft shard
// MetaShardID), which holds the cluster's metadata: registered nodes;
// topics, with their Kafka ids, configs, and each partition's Raft shard
// and replicas; consumer groups' committed offsets; the producer-id
// counter; pipeline specs; connector checkpoints; the Avro schema
// store; and the transaction coordinator's state (txn.go).
//
// State changes only through Apply, which every replica runs on the same
// committed commands in the same order, so it must reach the same state
// on each: everything an outcome depends on travels in the command (the
// proposer's clock, topic UUIDs, replica placements), and no result or
// encoding depends on map iteration order. The package does no I/O,
// starts no goroutines and reads no clock; log/replica wraps a State in a
// dragonboat state machine and guards it with a lock.
//
// # Commands
//
// A command is one of the op structs, encoded by Encode as JSON:
// {"op":"create_topic","args":{...}}. Decoding is strict (unknown ops and
// fields, trailing bytes: ErrBadCommand).
//
//	op                     struct               refusals (besides ErrBadCommand)
//	register_node          RegisterNode         ErrInvalidRequest
//	create_topic           CreateTopic          ErrInvalidTopic, ErrTopicExists, ErrInvalidRequest (id),
//	                                            ErrInvalidPartitions, ErrInvalidReplicationFactor,
//	                                            ErrInvalidReplicaAssignment, ErrInvalidConfig
//	delete_topic           DeleteTopic          ErrUnknownTopic
//	create_partitions      CreatePartitions     ErrUnknownTopic, ErrInvalidPartitions, ErrInvalidReplicaAssignment
//	alter_configs          AlterConfigs         ErrUnknownTopic, ErrInvalidConfig, ErrInvalidRequest
//	commit_offsets         CommitOffsets        ErrInvalidGroup; per entry ErrUnknownTopic, ErrMetadataTooLarge
//	delete_group           DeleteGroup          ErrInvalidGroup, ErrGroupNotFound
//	delete_offsets         DeleteOffsets        ErrInvalidGroup, ErrGroupNotFound; per partition ErrUnknownTopic
//	allocate_producer_ids  AllocateProducerIDs  ErrInvalidRequest
//	put_pipeline           PutPipeline          ErrInvalidRequest
//	delete_pipeline        DeletePipeline       ErrUnknownPipeline
//	put_checkpoint         PutCheckpoint        ErrInvalidRequest
//	register_schema        RegisterSchema       ErrInvalidSchema
//	init_txn_producer      InitTxnProducer      ErrInvalidRequest, ErrInvalidTxnTimeout, ErrConcurrentTransactions,
//	                                            ErrInvalidProducerIDMapping, ErrProducerFenced
//	add_txn_partitions     AddTxnPartitions     the txn refusals (ErrInvalidProducerIDMapping, ErrProducerFenced,
//	                                            ErrConcurrentTransactions), ErrUnknownTopic
//	add_txn_group          AddTxnGroup          the txn refusals, ErrInvalidGroup
//	txn_commit_offsets     TxnCommitOffsets     the txn refusals, ErrInvalidTxnState; per entry as commit_offsets
//	end_txn                EndTxn               the txn refusals, ErrInvalidTxnState
//	complete_txn           CompleteTxn          the txn refusals, ErrInvalidTxnState
//	abort_txn              AbortTxn             the txn refusals, ErrInvalidTxnState
//	report_lagging         ReportLagging        ErrUnknownNode, ErrInvalidRequest
//
// A refused command changes nothing. Version counts the applies that
// changed something; a success that changes nothing (registering a node
// with the addresses it has, putting a pipeline's current spec) leaves
// it alone.
//
// # Identifiers
//
// Partition shards get ids from a counter starting at
// FirstPartitionShardID; ids are never reused, even after the topic is
// deleted, so a new shard never meets an old shard's Raft data. A replica
// created with its partition has its node's id as replica id.
//
// # Results and snapshots
//
// Result crosses dragonboat's statemachine.Result through EncodeResult and
// DecodeResult. Save writes the whole state as one JSON object whose
// collections are slices in key order, so equal states save equal bytes;
// Load checks every invariant Apply keeps before it replaces the state.
//
// Topic configs are one table (config.go) that validation, DescribeConfigs
// and LogSettingsOf share.
package meta
