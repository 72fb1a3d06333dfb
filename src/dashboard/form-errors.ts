import { AppError, type ValidationIssue } from '../http/errors.js';

export interface FormError {
  status: number;
  /** Form field name → message; `form` for what no single field is at fault for. */
  errors: Record<string, string>;
  error: AppError;
}

/**
 * The one mapping of a service's refusal onto a form: 4xx errors (except 404, which is a page of its
 * own) become a message beside the field at fault, named by `fields` (the service's field → the
 * form's input); anything else is rethrown to the dashboard's error page.
 */
export function formError(err: unknown, fields: Record<string, string> = {}): FormError {
  if (!(err instanceof AppError) || err.status >= 500 || err.status === 404) throw err;
  const issue = (err.details as { issues?: ValidationIssue[] } | undefined)?.issues?.[0];
  const field = issue?.path.split('.')[0] ?? '';
  // Beside its field, the issue's own words; the whole error's message otherwise.
  const message = issue && fields[field] ? issue.message : err.message;
  return { status: err.status, errors: { [fields[field] ?? 'form']: message }, error: err };
}
