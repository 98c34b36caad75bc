/**
 * Ready-made agents: invoice extraction, vendor validation, approval routing, fraud screeners and
 * cheap/expensive extraction for cascades, each with a seeded simulated model by default and the
 * tutorial's production policies (10 s timeout, retries, breaker, 24 h cache where safe).
 */
export { llmAgent } from './llm.js';
export type { LlmAgentConfig } from './llm.js';
export { READY_AGENT_DEFAULTS } from './options.js';
export type { ReadyAgentOptions } from './options.js';
export { vendorExtraction, amountExtraction, dateExtraction } from './invoice.js';
export type { Invoice, VendorField, AmountField, DateField } from './invoice.js';
export { simulatedInvoiceModel } from './invoice-model.js';
export type { InvoiceModelOptions } from './invoice-model.js';
export { vendorValidation } from './validation.js';
export type { VendorQuery, VendorRecord } from './validation.js';
export { approvalRouting } from './routing.js';
export type { RoutingQuery, Routing } from './routing.js';
export { APPROVERS, approvalTier } from './approvers.js';
export type { ApprovalTier } from './approvers.js';
export { invoiceWorkflow } from './invoice-workflow.js';
export type { InvoiceWorkflowOptions, ExtractedInvoice, ProcessedInvoice } from './invoice-workflow.js';
export { cheapVendorExtraction, expensiveVendorExtraction, vendorCascade } from './cascade.js';
export type { VendorCascadeOptions } from './cascade.js';
export { fraudScreener, fraudScreeners, simulatedFraudModel, transactionRisk } from './fraud.js';
export type { Transaction, FraudVerdict, FraudScreenerOptions, FraudModelOptions } from './fraud.js';
